"""The foreman's page: a small web page the gate serves on the site network, in its own process (`sitegate web`).

A foreman does not SSH: from a phone he reads the gate's state in the outage verdict's words, who is on site,
today's registrations and the remarks to act on, enters the contact centre's reference number and gets the
paper listing. It reads the log through a read-only connection and holds no key: what a foreman does is signed
by the daemon (sitegate.page_actions) with the same functions as the `sitegate` command. The badge path never
waits for it (another process; SQLite's own locks).
"""
