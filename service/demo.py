"""The demo datasource of the embedded setup: a small SQLite shop with awkward, realistic data.

Created once in the data directory; its rows exercise what exports get wrong: Chinese names,
commas, quotes and newlines inside fields, NULL next to empty strings, integers beyond 2^53,
decimals, dates and timestamps.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

_SCHEMA = """
CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT,
    city        TEXT,
    note        TEXT,
    created_at  TIMESTAMP NOT NULL
);
CREATE TABLE orders (
    id           INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL REFERENCES customers(id),
    order_no     BIGINT NOT NULL,
    amount       DECIMAL(12, 2) NOT NULL,
    status       TEXT NOT NULL,
    paid         BOOLEAN NOT NULL,
    order_date   DATE NOT NULL,
    remark       TEXT
);
CREATE TABLE products (
    sku          TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    price        DECIMAL(10, 2) NOT NULL,
    stock        INTEGER NOT NULL
);
"""

_CUSTOMERS = [
    (1, "张伟", "zhang.wei@example.cn", "北京", None, "2026-01-05 09:12:00"),
    (
        2,
        "李娜",
        "li.na@example.cn",
        "上海",
        'VIP, prefers "express" delivery',
        "2026-01-07 14:30:00",
    ),
    (3, "O'Brien, Seán", "sean@example.ie", "Dublin", "", "2026-02-11 08:00:00"),
    (4, "王芳", None, "深圳", "line one\nline two", "2026-02-28 23:59:59"),
    (5, "Zoë Müller", "zoe@example.de", "Berlin", "emoji ok 😀", "2026-03-01 00:00:00"),
    (6, "陈静", "chen.jing@example.cn", None, 'comma, quote " and CR\r\nLF', "2026-03-15 12:00:00"),
]

_ORDERS = [
    (1, 1, 9007199254740993, "199.00", "paid", 1, "2026-03-01", "首单"),
    (2, 1, 9007199254740995, "58.50", "paid", 1, "2026-03-02", None),
    (3, 2, 123456789012345678, "1024.99", "refunded", 0, "2026-03-02", "退款: 尺码不合适"),
    (4, 3, 42, "0.01", "pending", 0, "2026-03-03", 'test, "quoted"'),
    (5, 4, 9223372036854775807, "99999.99", "paid", 1, "2026-03-04", "multi\nline"),
    (6, 5, 1001, "12.30", "shipped", 1, "2026-03-05", ""),
    (7, 6, 1002, "7.00", "paid", 1, "2026-03-06", None),
    (8, 2, 1003, "350.00", "paid", 1, "2026-03-06", "企业采购，需发票"),
]

_PRODUCTS = [
    ("SKU-001", "机械键盘 (Mechanical keyboard)", "399.00", 12),
    ("SKU-002", "USB-C cable, 2m", "29.90", 340),
    ("SKU-003", '27" monitor', "1899.00", 0),
]


def ensure_demo_database(path: Path) -> bool:
    """Create the demo database at `path` unless it exists; True when it was created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as conn:
        conn.executescript(_SCHEMA)
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", _CUSTOMERS)
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _ORDERS)
        conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?)", _PRODUCTS)
    conn.close()
    tmp.replace(path)  # atomic: a half-built demo database is never seen
    return True
