"""Routes of the console: the single-page shell at `/` and its assets under /console/static."""

from functools import cache

from fastapi import APIRouter, HTTPException, Request, Response

from job_api.console.assets import Asset, load_assets, load_shell

# Nothing outside job-api is ever loaded, framed or posted to.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# The shell is tiny and names the assets; never cached, so a new release shows at once.
SHELL_CACHE = "no-store"
# Assets are revalidated on each load (cheap 304s) because their names carry no version.
ASSET_CACHE = "no-cache"

router = APIRouter(include_in_schema=False)


@cache
def _assets() -> dict[str, Asset]:
    return load_assets()


@cache
def _shell() -> Asset:
    return load_shell()


def _respond(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(content=asset.body, media_type=asset.media_type, headers=headers)


@router.get("/")
async def console_shell(request: Request) -> Response:
    """The Jobs console; it signs in and talks to /api/v1 from the browser."""
    return _respond(request, _shell(), SHELL_CACHE)


@router.get("/console/static/{asset_path:path}")
async def console_asset(asset_path: str, request: Request) -> Response:
    """A script, stylesheet or icon of the console."""
    asset = _assets().get(asset_path)
    if asset is None:
        raise HTTPException(status_code=404, detail=f"no console asset named {asset_path!r}")
    return _respond(request, asset, ASSET_CACHE)
