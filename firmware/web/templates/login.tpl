% rebase('base.tpl')
<form method="post" action="/login" class="card" id="login">
<label for="pin">{{say('pin')}}</label>
<input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="current-password" required autofocus>
<input type="hidden" name="token" value="{{token}}">
<input type="hidden" name="lang" value="{{lang}}">
<button id="sign-in" type="submit">{{say('sign_in')}}</button>
</form>
