"""What ``tcwebhook inspect`` prints: where the page is and which store it reads."""

from __future__ import annotations


def print_banner(url: str, store_url: str) -> None:
    from tcwebhook import console
    from tcwebhook.store.base import display_url

    out = console.stderr()
    out.print(f"[bold green]tcwebhook inspector[/] on {url}", highlight=False)
    # Never the password a PostgreSQL URL may hold.
    out.print(f"  events read from: {display_url(store_url)}", markup=False, highlight=False)
    out.print("Stop with Ctrl-C.", style="dim")
