"""The tenant gate: with an allow-list configured, only those organisations reach the bot.

An activity from any other tenant (or with none) is refused before any handler sees it: a
message with one sentence, an invoke with 403, anything else silently.
"""

from __future__ import annotations

import logging

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes

from bots.identity import tenant_id_of
from bots.wording import TENANT_REFUSED

log = logging.getLogger(__name__)


class TenantGate:
    def __init__(self, allowed_tenant_ids: frozenset[str]) -> None:
        self.allowed_tenant_ids = allowed_tenant_ids  # lower case; empty lets every tenant in

    async def admits(self, turn_context: TurnContext) -> bool:
        """Whether the activity may go on to the bot; if not, it has been refused."""
        if not self.allowed_tenant_ids:
            return True
        activity = turn_context.activity
        if (tenant_id_of(activity) or "").lower() in self.allowed_tenant_ids:
            return True
        log.info("refused a %s activity from a tenant not allowed", activity.type)
        if activity.type == ActivityTypes.message:
            await turn_context.send_activity(TENANT_REFUSED)
        elif activity.type == ActivityTypes.invoke:
            await turn_context.send_activity(
                Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=403))
            )
        return False
