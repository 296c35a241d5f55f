"""The pure core: workflow rules, export specs and plans, pre-check rules.

Nothing here imports gRPC, Slack, SQLAlchemy sessions or the network.
"""
