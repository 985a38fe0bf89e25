"""A Slack stand-in on real HTTP: the Web API, Socket Mode and response_urls the bot talks to
(`web_api`), the signed requests Slack sends the bot (`requests`), Block Kit checks
(`blockkit`), and a local workspace in the browser on top of them (`workspace_ui`, `main`).

It powers the integration tests and the embedded default when no real Slack is configured.
The bot never imports it: it only speaks HTTP to the bot.
"""
