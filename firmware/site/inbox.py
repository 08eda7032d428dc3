"""What paho's thread hands to the bus thread: a queue bounded in bytes.

Anyone holding one gate's password may publish 1 MiB messages (the most a gate accepts) as fast as the network
goes; the bus thread reads each one, so an unbounded queue would take the memory the gate needs to register.
Beyond the bound, messages are dropped unread and counted per sender; a record lost that way shows as a gap and
is asked for again, like one lost while the broker was away.
"""

from __future__ import annotations

import threading
from collections import Counter, deque

import paho.mqtt.client as mqtt

from sitegate.site import topics


class Inbox:
    def __init__(self, most_bytes: int) -> None:
        self.most_bytes = most_bytes
        self._messages: deque[mqtt.MQTTMessage] = deque()
        self._bytes = 0
        self._dropped: Counter[str] = Counter()
        self._lock = threading.Lock()

    def put(self, message: mqtt.MQTTMessage) -> bool:
        """Queue a message (paho's thread); False when it was dropped: the queue held too much already."""
        size = len(message.payload)
        with self._lock:
            if self._bytes + size > self.most_bytes:
                where = topics.parse(message.topic)
                self._dropped[where.device if where else "(not a sitegate topic)"] += 1
                return False
            self._bytes += size
            self._messages.append(message)
            return True

    def take(self) -> mqtt.MQTTMessage | None:
        """The oldest message (the bus thread), None when there is none."""
        with self._lock:
            if not self._messages:
                return None
            message = self._messages.popleft()
            self._bytes -= len(message.payload)
            return message

    def waiting_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def dropped(self) -> dict[str, int]:
        """Messages dropped per sender since the last call."""
        with self._lock:
            dropped, self._dropped = dict(self._dropped), Counter()
        return dropped
