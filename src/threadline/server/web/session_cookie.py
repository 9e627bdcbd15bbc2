"""The name of the cookie that keeps a browser signed in (it holds the project key;
``auth.py`` sets and reads it, ``flash.py`` signs its messages with it)."""

SESSION_COOKIE = "threadline_session"
