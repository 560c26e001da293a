# Mistake: BEGIN and COMMIT by hand but no ROLLBACK on error: the connection stays in an open or aborted transaction.
# ruff: noqa: F821  (InsufficientFunds, psycopg and pd come from earlier cells of the notebook)
def transfer(conn, src: int, dst: int, amount: int) -> int:
    """Move `amount` cents from account `src` to account `dst` and record it in `transfers`."""
    if not isinstance(amount, int) or amount <= 0 or src == dst:
        raise ValueError("invalid transfer")
    conn.execute("BEGIN")
    row = conn.execute("SELECT balance FROM accounts WHERE id = %s FOR UPDATE", (src,)).fetchone()
    if row is None or row[0] < amount:
        raise InsufficientFunds(f"account {src} cannot pay {amount}")
    conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, src))
    conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst))
    tid = conn.execute("INSERT INTO transfers (src, dst, amount) VALUES (%s, %s, %s) RETURNING id",
                       (src, dst, amount)).fetchone()[0]
    conn.execute("COMMIT")
    return tid
