% rebase('base.tpl')
<section id="remarks">
<h2>{{say('remarks')}}</h2>
% if remarks:
<ul>
% for item in remarks:
% text, action = remark_text(item), remark_action(item)
<li><strong>{{item.code if item.code else say('refused')}}</strong> {{text.text}}{{' *' if text.translated else ''}} ({{item.worker}}, {{show(item.registered_utc)}})
% if item.deadline_utc:
<br><span class="deadline">{{say('report_by')}} {{show(item.deadline_utc)[:10]}}</span>
% end
<br><small>{{action.text}}{{' *' if action.translated else ''}}</small></li>
% end
</ul>
% if any(remark_text(i).translated or remark_action(i).translated for i in remarks):
<p class="note" id="our-translation">* {{our_translation}}</p>
% end
% else:
<p>{{say('no_remarks')}}</p>
% end
</section>
<section id="registrations">
<h2>{{say('registrations')}} ({{len(registrations)}})</h2>
% if registrations:
<table id="today-table">
<thead><tr><th>{{say('time')}}</th><th>{{say('name')}}</th><th>{{say('employer')}}</th><th>{{say('direction')}}</th></tr></thead>
<tbody>
% for entry in registrations:
<tr><td>{{hhmm(entry.at_utc)}}</td><td>{{entry.name}} <small>{{entry.number}}</small></td><td>{{entry.employer}}</td><td>{{name('direction', entry.direction)}}</td></tr>
% end
</tbody>
</table>
% else:
<p>{{say('no_registrations')}}</p>
% end
</section>
