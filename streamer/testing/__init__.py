"""Unit-test streamer topologies in-process, without a broker.

    from streamer.testing import TopologyTestDriver

    with TopologyTestDriver(topology) as driver:
        driver.pipe("input", "key", "value")
        assert driver.read_output("output") == [("key", "VALUE")]

See docs/testing.md.
"""

from streamer.testing.driver import InputRow, TopologyTestDriver
from streamer.testing.output import OutputRecord
from streamer.runtime.store_views import SessionStoreView, StoreView, WindowStoreView

__all__ = ["InputRow", "OutputRecord", "SessionStoreView", "StoreView", "TopologyTestDriver", "WindowStoreView"]
