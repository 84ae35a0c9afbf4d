"""Pure domain of the trading service: mechanisms as deterministic state machines (time passed in),
rules as frozen dataclasses, money in integer fen. No I/O, no clock, no database.

Modules: `matching` (price-time book core) · `continuous` (CEA secondary market rules) ·
`market_policy` (their sessions, bands, block size, tick, lot, taker levels: policy data) ·
`listing` (挂牌) · `english_auction` (拍卖) · `tender` (招标) · `uniform_auction` + `clearing`
(sealed uniform-price quota auctions) · `reserve` (dual-controlled 底价) · `sealed` ·
`calendar` (working days) · `periods` (39号令 periods, minimum bidders, price collar: policy data) ·
`trade_code` (统一交易标识码) · `money` · `errors`.
"""
