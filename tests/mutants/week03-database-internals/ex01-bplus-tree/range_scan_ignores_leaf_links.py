# Range scan reads only the leaf where lo belongs and never follows the next links.
from bisect import bisect_left, bisect_right


class Node:
    """A page of the tree. Leaves: keys[i] maps to values[i], `next` is the leaf to the right.
    Internal nodes: len(children) == len(keys) + 1 and children[i] holds the keys k with
    keys[i-1] <= k < keys[i]. A node is a leaf exactly when `children` is empty."""

    def __init__(self):
        self.keys, self.values, self.children, self.next = [], [], [], None


class BPlusTree:
    """A B+ tree of order `order` = the maximum number of keys in any node (order >= 3).

    Splits, exactly (they fix the shape of the tree after any sequence of inserts):
    - a leaf that reaches order + 1 keys splits: the left leaf keeps the first ceil((order + 1) / 2)
      keys, a new right leaf takes the rest, and the right leaf's first key is COPIED up into
      the parent as the separator (it stays in the leaf too);
    - an internal node that reaches order + 1 keys splits around the key at index (order + 1) // 2:
      that key MOVES up into the parent; the left node keeps the keys before it and the right
      node the keys after it, with the children divided accordingly;
    - when the root splits, a new root with that one key and two children is made.
    Inserting a key that is already present replaces its value and changes no node.
    """

    def __init__(self, order: int = 4):
        if order < 3:
            raise ValueError("order must be at least 3")
        self.order = order
        self.root = Node()

    def search(self, key):
        """The value stored under `key`, or None. Reads one node per level, root to leaf."""
        node = self.root
        while node.children:
            node = node.children[bisect_right(node.keys, key)]
        i = bisect_left(node.keys, key)
        if i < len(node.keys) and node.keys[i] == key:
            return node.values[i]
        return None

    def insert(self, key, value) -> None:
        """Insert or replace `key`, splitting full nodes as the class docstring says."""
        def insert_into(node):
            """Insert below `node`; return (separator, new right sibling) if `node` split."""
            if not node.children:                                   # a leaf
                i = bisect_left(node.keys, key)
                if i < len(node.keys) and node.keys[i] == key:
                    node.values[i] = value
                    return None
                node.keys.insert(i, key)
                node.values.insert(i, value)
                if len(node.keys) <= self.order:
                    return None
                keep = (len(node.keys) + 1) // 2                    # ceil(n / 2) stay left
                right = Node()
                right.keys, node.keys = node.keys[keep:], node.keys[:keep]
                right.values, node.values = node.values[keep:], node.values[:keep]
                right.next, node.next = node.next, right
                return right.keys[0], right                         # copied up
            i = bisect_right(node.keys, key)
            split = insert_into(node.children[i])
            if split is None:
                return None
            node.keys.insert(i, split[0])
            node.children.insert(i + 1, split[1])
            if len(node.keys) <= self.order:
                return None
            mid = len(node.keys) // 2
            right, up = Node(), node.keys[mid]                      # moved up
            right.keys, node.keys = node.keys[mid + 1:], node.keys[:mid]
            right.children, node.children = node.children[mid + 1:], node.children[:mid + 1]
            return up, right

        split = insert_into(self.root)
        if split is not None:
            root = Node()
            root.keys, root.children = [split[0]], [self.root, split[1]]
            self.root = root

    def range_scan(self, lo, hi) -> list:
        """[(key, value), ...] for lo <= key <= hi in key order: descend once to the leaf where
        `lo` belongs, then follow the `next` links from leaf to leaf."""
        node = self.root
        while node.children:
            node = node.children[bisect_right(node.keys, lo)]
        out = []
        while node is not None:
            for k, v in zip(node.keys, node.values, strict=True):
                if k > hi:
                    return out
                if k >= lo:
                    out.append((k, v))
            break
        return out

    def shape(self) -> list:
        """The keys of every node, level by level from the root: [[root keys], [keys, keys], ...]."""
        level, out = [self.root], []
        while level:
            out.append([list(n.keys) for n in level])
            level = [c for n in level for c in n.children]
        return out
