"""The stateful side: subscribers, the delivery ledger, SMTP, the send engine and its flow.

Code here talks to the network and to SQLite, and survives SIGKILL: every state change is
committed before the next network step. Nothing here imports click.
"""
