"""The hub's own pages under ``/hub/``; :data:`handlers` is what the app serves."""

from gilhub.handlers import admin, login, pages, tokens

handlers: list[tuple] = [
    (r"/?", pages.RootHandler),
    (r"/hub/?", pages.RootHandler),
    (r"/hub/home", pages.HomeHandler),
    (r"/hub/interface", pages.InterfaceHandler),
    (r"/hub/login", login.LoginHandler),
    (r"/hub/logout", login.LogoutHandler),
    (r"/hub/change-password", login.ChangePasswordHandler),
    (r"/hub/token", tokens.TokenPageHandler),
    (r"/hub/token/([0-9]+)/revoke", tokens.TokenRevokeHandler),
    (r"/hub/spawn/?", pages.SpawnHandler),
    (r"/hub/spawn/([^/]+)", pages.SpawnHandler),
    (r"/hub/spawn-pending/([^/]+)", pages.SpawnPendingHandler),
    (r"/hub/spawn-log/([^/]+)", pages.SpawnLogHandler),
    (r"/hub/stop/([^/]+)", pages.StopHandler),
    (r"/hub/user-redirect/(.*)", pages.UserRedirectHandler),
    (r"/hub/admin", admin.AdminHandler),
    (r"/hub/admin/users", admin.AdminUsersHandler),
    (r"/hub/admin/users/([^/]+)/(remove|password|admin|rename)", admin.AdminUserActionHandler),
]
