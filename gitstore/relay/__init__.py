"""Events out: the relay hands each repository's event feed to downstream systems (RabbitMQ,
webhooks), at least once and in order per repository, from a cursor it stores only after a
sink confirmed (docs/decisions/0012-events-out.md).

    state.py         cursors, webhook subscriptions and the delivery log (relay.sqlite3)
    relay.py         lanes (one repository x one sink), the loop, the lane lock, the thread
    amqp.py          the RabbitMQ sink: topic exchange, persistent messages, publisher confirms
    webhooks.py      subscription rules, signatures, SSRF refusal, one POST
    webhook_sink.py  a subscription as a sink: retries, the delivery log, failed state
    service.py       which sinks each repository has, and the relay's thread, for a server
    api.py           what the API and the CLI import of it
"""
