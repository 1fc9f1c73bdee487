"""A todo JSON API on webmini: MySQL, a memcached read-through cache and sessions."""
