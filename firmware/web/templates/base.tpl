<!doctype html>
<html lang="{{lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{say('gate')}} {{device_id}}</title>
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="/static/page.css">
</head>
<body>
<header>
<h1>{{say('gate')}} {{device_id}}</h1>
<nav class="lang" aria-label="{{say('language')}}">
% for code in languages:
<a href="{{path}}?lang={{code}}" hreflang="{{code}}" class="{{'current' if code == lang else ''}}"{{!' aria-current="true"' if code == lang else ''}}>{{code.upper()}}</a>
% end
</nav>
</header>
% if session:
<nav class="tabs" aria-label="{{say('pages')}}">
<a href="/" class="{{'current' if path == '/' else ''}}">{{say('state')}}</a>
<a href="/onsite" class="{{'current' if path == '/onsite' else ''}}">{{say('on_site')}}</a>
<a href="/today" class="{{'current' if path == '/today' else ''}}">{{say('today')}}</a>
</nav>
% end
<main>
% if message:
<p class="message" id="message">{{message}}</p>
% end
% if error:
<p class="error" id="error">{{error}}</p>
% end
{{!base}}
</main>
% if session:
<footer>
<span id="who">{{say('signed_in', name=session.foreman)}}</span>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{{session.csrf}}"><button id="sign-out" type="submit">{{say('sign_out')}}</button></form>
</footer>
% end
<script src="/static/page.js"></script>
</body>
</html>
