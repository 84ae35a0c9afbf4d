"""Matching core: hypothesis properties against a naive reference, and totals equal to the peers."""
from hypothesis import given, settings
from hypothesis import strategies as st

from services.trading.domain.continuous import ContinuousMarket, TradeExecuted
from services.trading.domain.errors import DomainError
from services.trading.domain.matching import OrderBook, OrderType, RestingOrder, SelfTradePrevention
from tests.bench.bench_matching import run_limit_order_book, run_pyorderbook, run_yaosu, shallow_workload, workload
from tests.unit.trading.market_rules import cea_rules


def test_totals_equal_the_peers_on_the_small_workloads():
    for ops in (workload(20_000), shallow_workload(20_000)):
        ours = run_yaosu(ops)[1:]
        assert ours == run_pyorderbook(ops)[1:] == run_limit_order_book(ops)[1:]
        assert ours[2] > 0 and ours[0] > 0 and ours[1] > 0


class NaiveBook:
    """Reference: a flat list scanned in full for every order. Obviously price-time."""

    def __init__(self):
        self.orders: list[list] = []  # [seq, id, is_buy, price, qty, owner]
        self.seq = 0

    def limit(self, oid, is_buy, qty, price, owner):
        fills = []
        while qty:
            candidates = [o for o in self.orders if o[2] != is_buy and (o[3] <= price if is_buy else o[3] >= price)]
            if not candidates:
                break
            best = min(candidates, key=lambda o: (o[3] if is_buy else -o[3], o[0]))
            q = min(qty, best[4])
            fills.append((best[1], oid, best[3], q))
            best[4] -= q
            qty -= q
            if not best[4]:
                self.orders.remove(best)
        if qty:
            self.seq += 1
            self.orders.append([self.seq, oid, is_buy, price, qty, owner])
        return fills

    def cancel(self, oid):
        self.orders = [o for o in self.orders if o[1] != oid]


ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("L"), st.booleans(), st.integers(1, 20), st.integers(95, 105)),
        st.tuples(st.just("C"), st.integers(1, 60)),
        st.tuples(st.just("R"), st.integers(1, 60), st.integers(1, 5)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops=ops_strategy)
def test_book_matches_the_naive_reference_and_keeps_invariants(ops):
    book, naive = OrderBook(), NaiveBook()
    submitted = executed = cancelled = 0
    oid = 0
    for op in ops:
        if op[0] == "L":
            oid += 1
            fills = book.limit(oid, op[1], op[2], op[3])
            assert [tuple(f) for f in fills] == naive.limit(oid, op[1], op[2], op[3], 0)
            # Trades happen at the resting (maker) price, within the taker's limit.
            assert all((f.price <= op[3]) if op[1] else (f.price >= op[3]) for f in fills)
            submitted += op[2]
            executed += 2 * sum(f.quantity for f in fills)
        elif op[0] == "C":
            cancelled += book.cancel(op[1])
            naive.cancel(op[1])
        else:
            resting = book.order(op[1])
            if resting and op[2] < resting.quantity:
                book.reduce(op[1], op[2])
                cancelled += op[2]
                next(o for o in naive.orders if o[1] == op[1])[4] -= op[2]
        assert not book.is_crossed()
        buy, sell = book.resting_quantity()
        # Quantity conserved: everything submitted is resting, executed (both sides) or cancelled.
        assert submitted == buy + sell + executed + cancelled
    expected = sorted(naive.orders, key=lambda o: (not o[2], -o[3] if o[2] else o[3], o[0]))
    assert book.snapshot() == [RestingOrder(o[1], o[2], o[3], o[4], o[5]) for o in expected]
    assert OrderBook.restore(book.snapshot()).snapshot() == book.snapshot()


@settings(max_examples=200, deadline=None)
@given(
    orders=st.lists(
        st.tuples(st.booleans(), st.integers(1, 300), st.integers(8_000, 12_000), st.integers(1, 3),
                  st.sampled_from([OrderType.LIMIT, OrderType.MARKET, OrderType.IOC, OrderType.FOK])),
        max_size=40,
    ),
    stp=st.sampled_from(list(SelfTradePrevention)),
)
def test_no_trade_outside_the_band_and_no_self_trade(orders, stp):
    from datetime import date, datetime

    mkt = ContinuousMarket("CEA", cea_rules(self_trade_prevention=stp.value))
    mkt.open_day(date(2025, 3, 3), 10_000)
    lower, upper = mkt.price_limits()
    now = datetime(2025, 3, 3, 10, 0)
    owner_of = {}
    for i, (is_buy, qty, price, account, order_type) in enumerate(orders, start=1):
        owner_of[i] = account
        try:
            events = mkt.place_order(i, account, is_buy, qty, now, None if order_type is OrderType.MARKET else price, order_type)
        except DomainError as err:
            assert err.code == "PRICE_OUTSIDE_BAND" and not lower <= price <= upper
            continue
        for e in events:
            if isinstance(e, TradeExecuted):
                assert lower <= e.price <= upper
                if stp is not SelfTradePrevention.NONE:
                    assert owner_of[e.maker_order_id] != owner_of[e.taker_order_id]
        assert not mkt.book.is_crossed()
    assert all(lower <= o.price <= upper for o in mkt.book.resting_orders())


@settings(max_examples=300, deadline=None)
@given(
    resting=st.lists(st.tuples(st.integers(1, 50), st.integers(9_000, 9_008), st.integers(1, 3)), min_size=1,
                     max_size=30),
    level=st.integers(1, 5),
    quantity=st.integers(1, 120),
    owner=st.integers(1, 4),
    stp=st.sampled_from(list(SelfTradePrevention)),
)
def test_a_level_order_trades_only_at_its_level_in_time_priority(resting, level, quantity, owner, stp):
    book = OrderBook(stp)
    for i, (qty, price, account) in enumerate(resting, start=1):
        book.limit(i, False, qty, price, account)
    depth = book.depth(False, 5)
    if level > len(depth):
        try:
            book.submit(999, True, quantity, 9_000, OrderType.LEVEL, owner, level)
        except ValueError:
            return
        raise AssertionError("a missing level must be refused")
    price, live = depth[level - 1]
    queue = [o for o in book.side_in_priority(False) if o.price == price]
    others = [d for d in book.depth(False, 50) if d[0] != price]
    fills, rested, cancelled = book.submit(999, True, quantity, price, OrderType.LEVEL, owner, level)
    executed = sum(f.quantity for f in fills)
    assert rested == 0 and 999 not in book and executed + cancelled == quantity and executed <= live
    assert all(f.price == price for f in fills)
    makers = [f.maker_order_id for f in fills]
    order = [o.order_id for o in queue]
    assert makers == sorted(makers, key=order.index)  # time priority within the level
    if stp is not SelfTradePrevention.NONE:
        assert all(o.owner != owner for o in queue if o.order_id in makers)
    # Every other level is untouched: no trade-through, better or worse.
    assert [d for d in book.depth(False, 50) if d[0] != price] == others
