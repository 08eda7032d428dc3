% rebase('base.tpl')
<section class="state {{state.level}}" id="state" aria-labelledby="state-word">
<p class="band" id="state-word">{{name('level', state.level)}}</p>
<div class="said">
<h2 id="state-line">{{state.line}}</h2>
% if state.steps:
<ol id="steps" aria-label="{{say('steps')}}">
% for step in state.steps:
<li><strong>{{!phone_linked(step.action)}}</strong> {{step.detail}}</li>
% end
</ol>
% end
% if state.since_utc:
<p class="since">{{say('since')}} {{show(state.since_utc)}}</p>
% end
% if state.evidence:
<details id="evidence">
<summary>{{say('evidence')}}</summary>
<ul>
% for piece in state.evidence:
<li>{{show(piece.at_utc)}}{{say('colon')}}{{name('event', piece.what)}}
% if piece.failed:
<ul>
% for probe in piece.failed:
<li>{{name('probe', probe.get('name'))}}{{say('colon')}}{{name('symptom', probe.get('symptom'))}}</li>
% end
</ul>
% end
</li>
% end
</ul>
<p>{{say('kept_for_technician')}}</p>
</details>
% end
</div>
</section>

<details id="paper"{{!' open' if state.level in ('outage', 'fault') or error or message else ''}}>
<summary>{{say('paper')}}</summary>
<section id="reference-section">
<h2>{{say('reference')}}</h2>
% if references:
<ul id="references">
% for found in references:
<li><strong>{{found['reference']}}</strong> {{found.get('employer') or ''}} ({{hhmm(found['at_utc'])}}{{(' ' + say('by') + ' ' + found['by']) if found.get('by') else ''}})</li>
% end
</ul>
% end
<form method="post" action="/reference" id="reference-form">
<input type="hidden" name="csrf" value="{{session.csrf}}">
<input id="reference" name="reference" maxlength="64" autocomplete="off" aria-label="{{say('reference')}}">
<details><summary>{{say('employer_only')}}</summary>
<input id="employer" name="employer" inputmode="numeric" maxlength="14" aria-label="{{say('employer')}}">
</details>
<button id="record" type="submit">{{say('record')}}</button>
</form>
</section>

<section id="listing">
<h2>{{say('listing')}}</h2>
<form method="post" action="/listing.pdf">
<input type="hidden" name="csrf" value="{{session.csrf}}">
% if len(employers) > 1:
<label for="listing-employer">{{say('employer')}}</label>
<select id="listing-employer" name="employer">
<option value="">{{say('whole_site')}}</option>
% for number, employer_name in employers:
<option value="{{number}}">{{employer_name or number}}</option>
% end
</select>
% end
<button id="download" type="submit">{{say('download')}}</button>
% if printer:
<button id="print" type="submit" formaction="/print">{{say('to_printer')}}</button>
% end
</form>
</section>
</details>
