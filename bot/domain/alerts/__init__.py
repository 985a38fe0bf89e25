"""Alertmanager's side of the bot, pure: the webhook body (`alertmanager`), which catalog service
an alert is about (`mapping`), whether a rollback is likely to help (`advice`), and the Block Kit
of the alert message (`messages`). No I/O here; the groupKey → message index that must survive
restarts lives in `bot.adapters.kube.configmaps`."""
