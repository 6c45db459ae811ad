"""The hub's REST API under ``/hub/api/``; :data:`handlers` is what the app serves."""

from gilhub.apihandlers import users as api

_USER = r"(?P<name>[^/]+)"

handlers: list[tuple] = [
    (r"/hub/api/?", api.RootAPIHandler),
    (r"/hub/api/info", api.InfoAPIHandler),
    (r"/hub/health", api.HealthHandler),
    (r"/hub/api/health", api.HealthHandler),
    (r"/hub/api/user", api.SelfAPIHandler),
    (r"/hub/api/users", api.UserListAPIHandler),
    (rf"/hub/api/users/{_USER}", api.UserAPIHandler),
    (rf"/hub/api/users/{_USER}/server", api.ServerAPIHandler),
    (rf"/hub/api/users/{_USER}/server/progress", api.ProgressAPIHandler),
    (rf"/hub/api/users/{_USER}/server/address", api.ServerAddressAPIHandler),
    (rf"/hub/api/users/{_USER}/activity", api.ActivityAPIHandler),
    (rf"/hub/api/users/{_USER}/tokens", api.TokenListAPIHandler),
    (rf"/hub/api/users/{_USER}/tokens/(?P<token_id>[^/]+)", api.TokenAPIHandler),
]
