"""Unbound Flask extensions; this module imports only kaptrain.sessions (which imports nothing from kaptrain), which
keeps imports acyclic."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager

from kaptrain.sessions import RememberingCSRFProtect

csrf = RememberingCSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
