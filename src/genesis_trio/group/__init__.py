"""Ring groups and the load balancers that spread calls across destinations."""

from .._publish import publish
from ._balancers import InMemoryLoadBalancer, LoadBalancerBackend, RedisLoadBalancer
from ._ring import RingGroup, RingMode

__all__ = [
    "InMemoryLoadBalancer",
    "LoadBalancerBackend",
    "RedisLoadBalancer",
    "RingGroup",
    "RingMode",
]

publish(globals())
