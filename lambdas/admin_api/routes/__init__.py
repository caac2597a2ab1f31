"""The admin API's route modules: each registers its routes on ``admin_api.resolver.app`` when imported.

The entry point (``admin_api.handler``) imports them with the first request (``ROUTE_MODULES``
lists them, in the order their paths appear in the OpenAPI document). To add routes, add a module
here and one entry to ``ROUTE_MODULES``; shared OpenAPI helpers are in ``routes.common``.
"""
