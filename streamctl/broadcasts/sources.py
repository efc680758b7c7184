"""The audience source each broadcast destination brings: its chat and viewers, no video id to paste."""

from __future__ import annotations

import logging
from dataclasses import replace

from ..accounts.facebook import PageToken, default_api_base
from ..accounts.files import CredentialFileError
from ..config import AudienceConfig, EventFile

log = logging.getLogger(__name__)


def with_broadcast_sources(event: EventFile) -> EventFile:
    """The event with an audience source for every broadcast destination that has none of its name.

    The source starts without a video id and waits; the broadcast manager's `BroadcastReady` binds it.
    """
    names = {a.name for a in event.audience}
    extra = []
    for dest in event.destinations:
        if not dest.broadcast or dest.name in names or dest.credentials_file is None:
            continue
        existing = None if dest.broadcast == "create" else dest.broadcast
        if dest.platform == "youtube":
            options = {"credentials_file": str(dest.credentials_file)}
            if dest.api_base:
                options["api_base"] = dest.api_base
            if existing:
                options["video_id"] = existing
            extra.append(AudienceConfig(name=dest.name, platform="youtube", options=options))
        elif dest.platform == "facebook":
            try:
                page = PageToken.load(dest.credentials_file)
            except CredentialFileError as e:
                log.warning("%s: no audience source: %s", dest.name, e)  # the broadcast manager alerts on it
                continue
            options = {"api_base": dest.api_base or page.api_base or default_api_base()}
            if existing:
                options["live_video_id"] = existing
            extra.append(AudienceConfig(name=dest.name, platform="facebook", options=options,
                                        credential=page.access_token))
    return replace(event, audience=event.audience + tuple(extra)) if extra else event
