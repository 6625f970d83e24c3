"""Channel: one FreeSWITCH channel, controlled over an outbound Session or an Inbound client.

State comes from the channel's events, applied by the connection's reader in
the order FreeSWITCH sent them. Every blocking operation runs inside an
:class:`~genesis_trio.OutcomeScope` (its own ``timeout=`` and the caller's
cancellation reach it the same way), fails at once with ``ChannelHangup`` when
the channel hangs up and with ``ConnectionLost`` when the connection goes, and
stops what it started on the switch when it is cancelled.

One module per job, each a layer the next builds on:

- ``_state``: ``ChannelState`` and the status the events keep current;
- ``_core``: the shared plumbing (taps on the connection, waits that fail on
  hangup, the operation wrapper);
- ``_applications``: ``execute`` and stopping a cancelled application;
- ``_control``: answer, hangup, bridge, park, variables;
- ``_media``: playback, say, play_and_get_digits, record;
- ``_waits``: ``wait``;
- ``_dtmf``: ``send_dtmf`` and DTMF handlers;
- ``_originate``: ``Channel.create`` and ``Channel.from_uuid``;
- ``_channel``: the public ``Channel`` assembled from them.

Nothing here imports the clients' modules beyond ``ESLClient``'s type: a
Session imports Channel, never the other way round.
"""

from .._publish import publish
from ._channel import Channel
from ._core import CHANNEL_EVENTS
from ._dtmf import DtmfHandler
from ._state import ChannelState

__all__ = ["CHANNEL_EVENTS", "Channel", "ChannelState", "DtmfHandler"]

publish(globals())
