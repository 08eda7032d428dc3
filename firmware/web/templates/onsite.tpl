% rebase('base.tpl')
<section id="onsite">
<h2>{{say('on_site')}}: <span id="count">{{say('on_site_count', count=len(present))}}</span></h2>
<p class="printed-at">{{show(now_utc)}}</p>
% if present:
<table id="present">
<thead><tr><th>{{say('name')}}</th><th>{{say('employer')}}</th><th>{{say('since')}}</th><th>{{say('at_gate')}}</th></tr></thead>
<tbody>
% for person in present:
<tr><td>{{person.last_name}} {{person.first_name}}</td><td>{{employer_name(person.employer) or person.employer}}</td><td>{{hhmm(person.since_utc)}}</td><td>{{person.gate}}</td></tr>
% end
</tbody>
</table>
% else:
<p id="nobody">{{say('nobody')}}</p>
% end
<button type="button" data-print id="print-page">{{say('print_page')}}</button>
</section>
