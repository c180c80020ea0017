-- Creator statements (分账, SPEC section 5; sinks/statements.py). Immutable:
-- plain MergeTree, rows only ever inserted, never replaced or deleted, and not
-- among the tables a replay or reattribute rebuilds. A statement exists once
-- its header row (statements) is written, which is done last: lines and
-- order rows of a close that failed before it have no header and are ignored.

CREATE TABLE IF NOT EXISTS {db}.statements (
    statement_id String,
    creator_id String,
    cycle LowCardinality(String),
    period String,
    period_start Date32,
    period_end Date32,
    currency LowCardinality(String),
    tz String,
    as_of DateTime64(6, 'UTC'),
    closed_at DateTime64(6, 'UTC'),
    forced UInt8,
    gross Decimal(76, 30),
    refunds Decimal(76, 30),
    net Decimal(76, 30),
    commission Decimal(76, 30),
    lines UInt32,
    orders UInt32
) ENGINE = MergeTree ORDER BY (creator_id, period_start, statement_id);

-- One line per plan and period the money belongs to: kind 'period' (money
-- dated in the statement's period) or 'adjustment' (the change, since it was
-- settled, of an earlier period named by period/period_start/period_end).
CREATE TABLE IF NOT EXISTS {db}.statement_lines (
    statement_id String,
    line_no UInt32,
    creator_id String,
    kind LowCardinality(String),
    period String,
    period_start Date32,
    period_end Date32,
    plan_id String,
    drama_id String,
    commission_rate Nullable(Decimal(76, 30)),
    gross Decimal(76, 30),
    refunds Decimal(76, 30),
    net Decimal(76, 30),
    commission Decimal(76, 30)
) ENGINE = MergeTree ORDER BY (statement_id, line_no);

-- The orders that explain each line (for an adjustment: each order's change),
-- with the refunds the line counts for that order.
CREATE TABLE IF NOT EXISTS {db}.statement_orders (
    statement_id String,
    line_no UInt32,
    creator_id String,
    period String,
    plan_id String,
    order_id String,
    paid_at Nullable(DateTime64(6, 'UTC')),
    drama_id String,
    commission_rate Nullable(Decimal(76, 30)),
    gross Decimal(76, 30),
    refunds Decimal(76, 30),
    net Decimal(76, 30),
    commission Decimal(76, 30),
    refund_ids Array(String),
    refund_times Array(DateTime64(6, 'UTC')),
    refund_amounts Array(Decimal(76, 30))
) ENGINE = MergeTree ORDER BY (statement_id, line_no, order_id);
