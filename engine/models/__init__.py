"""Model zoo: importing this package registers every model with :mod:`engine.registry`."""
from engine.models import zoo  # noqa: F401
from engine.models import omniglot_zoo  # noqa: F401
from engine.models import seg_zoo  # noqa: F401
