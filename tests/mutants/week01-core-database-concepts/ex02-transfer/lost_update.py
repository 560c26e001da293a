# Mistake: reads the balances without locking, computes the new ones in Python and writes them back (lost update).
# ruff: noqa: F821  (InsufficientFunds, psycopg and pd come from earlier cells of the notebook)
def transfer(conn, src: int, dst: int, amount: int) -> int:
    """Move `amount` cents from account `src` to account `dst` and record it in `transfers`."""
    if not isinstance(amount, int) or amount <= 0 or src == dst:
        raise ValueError("invalid transfer")
    with conn.transaction():
        balance = dict(conn.execute("SELECT id, balance FROM accounts WHERE id = ANY(%s)", ([src, dst],)).fetchall())
        if src not in balance or dst not in balance:
            raise LookupError("no such account")
        if balance[src] < amount:
            raise InsufficientFunds(f"account {src} cannot pay {amount}")
        conn.execute("UPDATE accounts SET balance = %s WHERE id = %s", (balance[src] - amount, src))
        conn.execute("UPDATE accounts SET balance = %s WHERE id = %s", (balance[dst] + amount, dst))
        return conn.execute("INSERT INTO transfers (src, dst, amount) VALUES (%s, %s, %s) RETURNING id",
                            (src, dst, amount)).fetchone()[0]
