from rest_framework.pagination import CursorPagination, PageNumberPagination


class DefaultPagination(PageNumberPagination):
    """`?page=N&page_size=M`, at most 500 rows a page."""

    page_size_query_param = "page_size"
    max_page_size = 500


class NewestFirstCursorPagination(CursorPagination):
    """For append-only, fast-growing tables (ledgers, events): stable under inserts,
    no COUNT(*) over millions of rows."""

    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500
