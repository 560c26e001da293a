# Mistake: ON DELETE CASCADE, so deleting a customer silently deletes their order history.
def order_schema_ddl() -> str:
    """Return the SQL (one string, several statements separated by `;`) that creates, in an empty
    PostgreSQL database, exactly these tables and columns:

    customers   customer_id integer primary key; email text, required and unique; name text, required.
    products    product_id integer primary key; sku text, required and unique; name text, required;
                price_cents integer, required, greater than 0.
    orders      order_id integer primary key; customer_id, required, must be an existing customer;
                status text, required, one of 'placed', 'paid', 'shipped', 'delivered', 'cancelled';
                created_at timestamp, required, defaults to now().
    order_lines order_id, required, must be an existing order; line_no integer, required;
                product_id, required, must be an existing product;
                quantity integer, required, greater than 0;
                unit_price_cents integer, required, at least 0 (0 for a free gift);
                primary key (order_id, line_no).

    The database must also refuse to delete a customer, order or product that other rows still refer to.
    """
    ### BEGIN SOLUTION
    return """
    CREATE TABLE customers (
      customer_id integer PRIMARY KEY,
      email       text NOT NULL UNIQUE,
      name        text NOT NULL
    );
    CREATE TABLE products (
      product_id  integer PRIMARY KEY,
      sku         text NOT NULL UNIQUE,
      name        text NOT NULL,
      price_cents integer NOT NULL CHECK (price_cents > 0)
    );
    CREATE TABLE orders (
      order_id    integer PRIMARY KEY,
      customer_id integer NOT NULL REFERENCES customers (customer_id) ON DELETE CASCADE,
      status      text NOT NULL CHECK (status IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled')),
      created_at  timestamp NOT NULL DEFAULT now()
    );
    CREATE TABLE order_lines (
      order_id         integer NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
      line_no          integer NOT NULL,
      product_id       integer NOT NULL REFERENCES products (product_id) ON DELETE CASCADE,
      quantity         integer NOT NULL CHECK (quantity > 0),
      unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
      PRIMARY KEY (order_id, line_no)
    );
    """
    ### END SOLUTION
