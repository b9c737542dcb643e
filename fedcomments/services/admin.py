"""The single entry point of administration for the CLI and the admin API.

Blocks live in `services.blocks`, moderation in `services.moderation`; both adapters call
the functions re-exported here and nothing else, so they can never drift apart.
"""

from __future__ import annotations

from fedcomments.services.blocks import (
    EXPORT_FORMATS,
    BlockResult,
    ImportReport,
    Removed,
    actor_block_json,
    block_actor,
    block_domain,
    block_request,
    block_result_json,
    domain_block_json,
    export_domain_blocks,
    import_domain_blocks,
    import_report_json,
    list_actor_blocks,
    list_domain_blocks,
    unblock_actor,
    unblock_domain,
)
from fedcomments.services.moderation import (
    STATUSES,
    CommentDetail,
    Outcome,
    approve_comments,
    comment_detail_json,
    comment_json,
    delete_comments,
    follower_json,
    get_comment,
    list_comments,
    list_followers,
    list_reports,
    outcome_json,
    parse_ids,
    reject_comments,
    reply_to_comment,
    report_json,
)
from fedcomments.services.recheck import Outcome as RecheckOutcome
from fedcomments.services.recheck import outcome_json as recheck_json
from fedcomments.services.recheck import recheck as recheck_comments

__all__ = [
    "EXPORT_FORMATS",
    "STATUSES",
    "BlockResult",
    "CommentDetail",
    "ImportReport",
    "Outcome",
    "RecheckOutcome",
    "Removed",
    "actor_block_json",
    "approve_comments",
    "block_actor",
    "block_domain",
    "block_request",
    "block_result_json",
    "comment_detail_json",
    "comment_json",
    "delete_comments",
    "domain_block_json",
    "export_domain_blocks",
    "follower_json",
    "get_comment",
    "import_domain_blocks",
    "import_report_json",
    "list_actor_blocks",
    "list_comments",
    "list_domain_blocks",
    "list_followers",
    "list_reports",
    "outcome_json",
    "parse_ids",
    "recheck_comments",
    "recheck_json",
    "reject_comments",
    "reply_to_comment",
    "report_json",
    "unblock_actor",
    "unblock_domain",
]
