"""The woxqaq Slack bot: a thin slack-bolt adapter over the task service's gRPC API."""
