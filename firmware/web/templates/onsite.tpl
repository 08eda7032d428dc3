% rebase('base.tpl')
<section id="onsite">
<h2>{{say('on_site')}}: <span id="count">{{say('on_site_count', count=len(present))}}</span></h2>
<p class="printed-at">{{show(now_utc)}}</p>
% doubted = {(d.worker_kind, d.worker_number) for d in doubts}
% if present:
<table id="present">
<thead><tr><th>{{say('name')}}</th><th>{{say('employer')}}</th><th>{{say('since')}}</th><th>{{say('at_gate')}}</th></tr></thead>
<tbody>
% for person in present:
% doubt = (person.worker_kind, person.worker_number) in doubted
<tr{{!' class="doubt"' if doubt else ''}}><td>{{person.last_name}} {{person.first_name}}{{' ' + doubt_mark if doubt else ''}}</td><td>{{employer_name(person.employer) or person.employer}}</td><td>{{hhmm(person.since_utc)}}</td><td>{{person.gate}}</td></tr>
% end
</tbody>
</table>
% else:
<p id="nobody">{{say('nobody')}}</p>
% end
% if doubts:
<p id="doubt-legend">{{doubt_words['legend'][lang]}}</p>
% counted = {(p.worker_kind, p.worker_number) for p in present}
% absent = [d for d in doubts if (d.worker_kind, d.worker_number) not in counted]
% if absent:
<p>{{doubt_words['not_counted'][lang]}}</p>
<ul id="doubt-absent">
% for d in absent:
<li>{{d.last_name}} {{d.first_name}}: {{doubt_words['last'][lang].format(direction=d.direction, gate=d.gate, at=hhmm(d.wall_utc))}}</li>
% end
</ul>
% end
% end
<button type="button" data-print id="print-page">{{say('print_page')}}</button>
</section>
