"""The Slack scenario fixtures, for every test module of this folder."""

from tests.bots.slack.harness import fake_slack, hitl, hitl_settings, slack, slack_settings

__all__ = ["fake_slack", "hitl", "hitl_settings", "slack", "slack_settings"]
