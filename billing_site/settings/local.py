"""`make run`: a laptop demo. SQLite and a filesystem broker unless DATABASE_URL / REDIS_URL say otherwise."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# No cloud platform in the demo: the Usage page's sandbox panel stands in for it.
USAGE_SANDBOX_PROVISIONING = env.bool("USAGE_SANDBOX_PROVISIONING", default=True)
