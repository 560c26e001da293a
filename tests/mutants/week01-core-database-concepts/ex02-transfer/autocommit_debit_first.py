# Mistake: no transaction: the debit commits on its own, so a failure before the credit loses the money.
# ruff: noqa: F821  (InsufficientFunds, psycopg and pd come from earlier cells of the notebook)
def transfer(conn, src: int, dst: int, amount: int) -> int:
    """Move `amount` cents from account `src` to account `dst` and record it in `transfers`."""
    if not isinstance(amount, int) or amount <= 0 or src == dst:
        raise ValueError("invalid transfer")
    try:
        conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, src))
    except psycopg.errors.CheckViolation as e:
        raise InsufficientFunds(str(e)) from e
    conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, dst))
    return conn.execute("INSERT INTO transfers (src, dst, amount) VALUES (%s, %s, %s) RETURNING id",
                        (src, dst, amount)).fetchone()[0]
