"""The pages served by the exchange: counter desk, holder's access page, supervision dashboard."""

from exchange.web.page import install

__all__ = ["install"]
