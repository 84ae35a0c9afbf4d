"""Portal texts: Chinese first, English by `?lang=en` (remembered in a cookie)."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    "app": ("要素市场化配置平台", "yaosu public-resource platform"),
    "login": ("登录", "Log in"), "logout": ("退出", "Log out"), "username": ("用户名", "Username"),
    "password": ("密码", "Password"), "api_key": ("机构 API 密钥", "Agency API key"),
    "login_failed": ("用户名或密码错误", "Wrong username or password"),
    "login_throttled": ("登录失败次数过多，请稍后再试", "Too many failed logins, try again later"),
    "link_refused": ("不是可打开的文件链接", "Not a link that can be opened"),
    "home": ("首页", "Home"), "listings": ("交易公告", "Listings"), "catalogue": ("资源目录", "Catalogue"),
    "holdings": ("持有资产", "Holdings"), "trades": ("成交与结算", "Trades and settlement"),
    "market": ("指标交易", "Quota market"), "dashboard": ("监管看板", "Regulator dashboard"),
    "agency": ("机构工作台", "Agency desk"), "enterprise": ("企业", "Enterprise"),
    "class": ("评价类别", "Class"), "score": ("综合得分", "Score"), "measures": ("差别化措施", "Measures"),
    "report": ("一企一单", "Enterprise report"), "no_evaluation": ("评价结果尚未发布", "No evaluation published yet"),
    "register": ("报名并缴纳保证金", "Register and pay deposit"), "registered": ("已报名", "Registered"),
    "bidder_number": ("竞买号", "Bidder number"), "current_price": ("当前价", "Current price"),
    "leader": ("领先竞买号", "Leading bidder"), "closes_in": ("距截止", "Closes in"),
    "bid": ("出价", "Bid"), "place_bid": ("提交报价", "Place bid"), "my_bids": ("我的报价", "My bids"),
    "live_bids": ("实时报价", "Live bids"), "state": ("状态", "State"), "price": ("价格", "Price"),
    "quantity": ("数量", "Quantity"), "time": ("时间", "Time"), "instrument": ("品种", "Instrument"),
    "balance": ("余额", "Balance"), "available": ("可用", "Available"), "held": ("冻结", "Held"),
    "history": ("流水", "History"), "deposit": ("保证金", "Deposit"), "start_price": ("起始价", "Start price"),
    "increment": ("加价幅度", "Increment"), "conditions": ("竞买条件", "Conditions"),
    "documents": ("文件", "Documents"), "mechanism": ("方式", "Mechanism"), "title": ("名称", "Title"),
    "unavailable": ("服务暂不可用", "Service unavailable"), "orders": ("我的委托", "My orders"),
    "book": ("盘口", "Order book"), "buy": ("买入", "Buy"), "sell": ("卖出", "Sell"),
    "upload": ("上传指标数据", "Upload indicators"), "create_listing": ("新建挂牌", "New listing"),
    "class_by_region": ("分区域评价类别分布", "Classes by region"),
    "catalogue_by_region": ("分区域资源目录", "Catalogue by region"),
    "market_activity": ("市场成交", "Market activity"), "open_sales": ("在售项目状态", "Open sales by state"),
    "backlog": ("待结算", "Settlement backlog"), "health": ("服务健康", "Service health"),
    "alerts": ("预警", "Alerts"),
    "alert_high_price_bids": ("高价确认：自交易服务启动以来，竞买人确认了 {count} 笔超过价格熔断倍数的出价，请核查",
                              "High-price confirmations: {count} bids above the price collar were confirmed by "
                              "their bidders since trading started; please review"), "audit": ("审计日志校验", "Audit journal verification"),
    "intact": ("完整", "intact"), "broken": ("已损坏", "broken"), "entries": ("条记录", "entries"),
    "requests": ("请求数", "requests"), "errors": ("错误", "errors"), "none": ("无", "none"),
    "single_bidder": ("单一竞买人项目", "single-bidder sales"), "lang_other": ("English", "中文"),
    "class_by_park": ("分园区评价类别分布", "Classes by park"),
    "indicator_trend": ("分区域亩均指标（历年）", "亩均 indicators by region over years"),
    "tax_per_mu": ("亩均税收（万元/亩）", "tax per mu (10k CNY/mu)"),
    "va_per_mu": ("亩均增加值（万元/亩）", "value added per mu (10k CNY/mu)"),
    "bids_per_minute": ("每分钟报价数（近30分钟）", "Bids per minute (last 30 min)"),
    "runs_in_progress": ("评价进行中", "Evaluation runs in progress"),
    "run_progress": ("{year} 年度 {jurisdiction}：已完成 {pools_done}/{pools_total} 个评价池，{rows_done}/{rows_total} 家企业",
                     "{year}, {jurisdiction}: {pools_done} of {pools_total} pools, {rows_done} of {rows_total} enterprises"),
    "rollup_tree": ("区域汇总（全市—区县—园区，最新发布年度）", "Roll-ups: total, districts, parks (latest published year)"),
    "unit": ("单位", "Unit"), "firms": ("企业数", "Firms"), "above_size": ("规上", "Above size"),
    "below_size": ("规下", "Below size"), "yoy_pct": ("亩均税收同比（%）", "Tax per mu YoY (%)"),
    "land_c_d": ("C、D类企业用地（亩）", "Land of C/D firms (mu)"),
    "surcharge_yuan": ("差别化电价（元）", "Electricity surcharge (CNY)"), "composite": ("综合得分", "Composite"),
    "rank": ("同级排名", "Rank among peers"),
    "total_province": ("全省合计", "Province total"), "total_city": ("全市合计", "City total"),
    "total_county": ("全县（区）合计", "County total"), "total_other": ("合计", "Total"),
    "level_province": ("省", "Province"), "level_city": ("市", "City"), "level_county": ("区县", "District/county"),
    "level_other": ("区域", "Region"), "level_park": ("园区", "Park"), "level_division": ("行业", "Industry"),
}


def translator(lang: str):
    index = 1 if lang == "en" else 0

    def t(key: str) -> str:
        pair = TEXTS.get(key)
        return pair[index] if pair else key
    return t
