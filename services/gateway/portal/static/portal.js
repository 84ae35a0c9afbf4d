// The portal's only script: calls /api/v1 with the session cookie and an Idempotency-Key, and follows
// server-sent events. No framework, no build step. Pages carry no inline script (the Content-Security-Policy
// allows only this file): <body data-page="…" data-…> names what to start, see the end of this file.
const yaosu = (() => {
  const fmt = (m) => (m && m.fen !== undefined) ? "¥" + (Number(m.fen) / 100).toLocaleString("zh-CN", {minimumFractionDigits: 2}) : "—";
  const $ = (id) => document.getElementById(id);
  async function api(method, path, body) {
    const reply = await fetch(path, {method, credentials: "same-origin", headers: {
      "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID()}, body: body ? JSON.stringify(body) : undefined});
    const data = await reply.json().catch(() => ({}));
    if (!reply.ok) throw new Error(data.detail || reply.statusText);
    return data;
  }
  // Keep the 15-minute session cookie fresh while a page is open.
  setInterval(() => fetch("/session/refresh", {method: "POST", credentials: "same-origin"}), 10 * 60 * 1000);
  function row(table, cells, first) {
    const tr = document.createElement("tr");
    cells.forEach((c) => { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); });
    const header = table.querySelector("tr");
    if (first && header && header.nextSibling) table.insertBefore(tr, header.nextSibling); else table.appendChild(tr);
    tr.classList.add("flash"); setTimeout(() => tr.classList.remove("flash"), 1200);
  }
  function salePage(listingId) {
    let closesAt = null, offset = 0;
    const actions = $("actions");
    const creditCode = actions ? actions.dataset.creditCode : "";
    const noticeTexts = $("notices") ? JSON.parse($("notices").dataset.texts) : {};
    function showState(s) {
      if (s.increment && $("increment")) $("increment").textContent = fmt(s.increment);
      $("current-price").textContent = fmt(s.current_price);
      $("leader").textContent = s.leading_bidder_number || "—";
      $("sale-state").textContent = s.state;
      if (s.server_time) offset = Date.parse(s.server_time) - Date.now();
      closesAt = s.closes_at ? Date.parse(s.closes_at) : null;
      const input = $("bid-price");
      // The suggested bid follows the next minimum until the user types their own.
      if (input && s.next_minimum_bid && !input.dataset.edited) input.value = (Number(s.next_minimum_bid.fen) / 100).toFixed(2);
    }
    setInterval(() => {  // the countdown follows closes_at, which anti-sniping extensions move
      if (!closesAt) return;
      const left = Math.max(0, Math.floor((closesAt - Date.now() - offset) / 1000));
      $("countdown").textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    }, 250);
    async function myBids() {
      if (!creditCode) return;
      const table = $("my-bids");
      const bids = await api("GET", `/api/v1/listings/${listingId}/bids?credit_code=${creditCode}`).catch(() => null);
      if (!bids) return;
      table.querySelectorAll("tr:not(:first-child)").forEach((tr) => tr.remove());
      bids.data.forEach((b) => row(table, [fmt(b.price), b.state, b.accepted_at || ""]));
    }
    const events = new EventSource(`/api/v1/listings/${listingId}/events`);
    events.addEventListener("state", (e) => showState(JSON.parse(e.data)));
    const onBid = (e) => { const b = JSON.parse(e.data); row($("live-bids"), [b.bidder_number || "", fmt(b.price), b.accepted_at || b.at || ""], true); myBids(); };
    ["bid.accepted", "bid.placed", "bid.submitted"].forEach((name) => events.addEventListener(name, onBid));
    events.addEventListener("sale.increment_changed", (e) => {  // announced by the agency; applies from the next bid
      const c = JSON.parse(e.data);
      if ($("increment")) $("increment").textContent = fmt(c.increment);
      const input = $("bid-price");
      if (input && c.next_minimum_bid && !input.dataset.edited) input.value = (Number(c.next_minimum_bid.fen) / 100).toFixed(2);
      const li = document.createElement("li");
      li.textContent = noticeTexts.increment_changed.replace("{previous}", fmt(c.previous_increment))
        .replace("{increment}", fmt(c.increment)).replace("{reason}", c.reason || "");
      li.className = "flash";
      $("notices").insertBefore(li, $("notices").firstChild);
    });
    if ($("increment-form")) $("increment-form").onsubmit = async (ev) => {
      ev.preventDefault();
      try { const r = await api("POST", `/api/v1/listings/${listingId}/increment`, {
          increment_fen: Math.round(Number($("new-increment").value) * 100), reason: $("increment-reason").value});
        showState(r.state); $("increment-message").textContent = noticeTexts.increment_saved;
      } catch (err) { $("increment-message").textContent = err.message; }
    };
    if ($("register")) $("register").onclick = async () => {
      try { const r = await api("POST", `/api/v1/listings/${listingId}/registrations`, {credit_code: creditCode});
        $("my-number").textContent = r.bidder_number; $("message").textContent = r.state; $("register").remove();
      } catch (err) { $("message").textContent = err.message; }
    };
    if ($("bid-price")) $("bid-price").oninput = () => { $("bid-price").dataset.edited = "1"; };
    if ($("bid-form")) $("bid-form").onsubmit = async (ev) => {
      ev.preventDefault();
      const fen = Math.round(Number($("bid-price").value) * 100);
      try { const r = await api("POST", `/api/v1/listings/${listingId}/bids`, {credit_code: creditCode, price_fen: fen});
        $("message").textContent = `${r.bid.state} ${fmt(r.bid.price)}`; $("bid-price").value = ""; delete $("bid-price").dataset.edited; if (r.state) showState(r.state); myBids();
      } catch (err) { $("message").textContent = err.message; }
    };
    myBids();
  }
  function auctionPage(listingId, decided) {
    // The uniform-price quota auction: register with a guarantee, sealed (price, lots) bids that can be
    // modified or withdrawn inside the window, and the published result.
    const actions = $("actions");
    const texts = actions ? JSON.parse(actions.dataset.texts) : {};
    const creditCode = actions ? actions.dataset.creditCode : "";
    const say = (text) => { $("message").textContent = text; };
    const failed = (err) => say(`${texts.failed}：${err.message}`);
    let editing = null;  // the bid being modified
    function resetForm() {
      editing = null; $("bid-price").value = ""; $("bid-lots").value = "";
      $("cancel-modify").hidden = true; $("place-bid").textContent = $("place-bid").dataset.label;
    }
    async function myBids() {
      if (!creditCode) return;
      const table = $("my-bids");
      const bids = await api("GET", `/api/v1/listings/${listingId}/bids?credit_code=${creditCode}`).catch(() => null);
      if (!bids) return;
      table.querySelectorAll("tr:not(:first-child)").forEach((tr) => tr.remove());
      bids.data.forEach((b) => {
        row(table, [fmt(b.price), String(b.quantity_lots), texts["state_" + b.state] || b.state, (b.receipt || "").slice(0, 12)]);
        const tr = table.lastChild, cell = document.createElement("td");
        if (b.state === "accepted" && !decided) {
          const modify = document.createElement("button"), withdraw = document.createElement("button");
          modify.textContent = texts.modify; modify.className = "modify"; withdraw.textContent = texts.withdraw; withdraw.className = "withdraw";
          modify.onclick = () => { editing = b.bid_id; $("bid-price").value = (Number(b.price.fen) / 100).toFixed(2);
            $("bid-lots").value = b.quantity_lots; $("cancel-modify").hidden = false; $("place-bid").textContent = texts.modify; say(texts.modifying); };
          withdraw.onclick = async () => {
            try { await api("POST", `/api/v1/bids/${b.bid_id}/withdraw`, {credit_code: creditCode}); say(texts.withdrawn); myBids(); }
            catch (err) { failed(err); }
          };
          cell.append(modify, withdraw);
        }
        tr.appendChild(cell);
      });
    }
    async function result() {
      const r = await api("GET", `/api/v1/listings/${listingId}/result`).catch(() => null);
      if (!r) return;
      $("result").hidden = false;
      const rt = JSON.parse($("result").dataset.texts);  // labels for every viewer, bidder or not
      const reason = r.reason ? `（${rt["reason_" + r.reason] || r.reason}）` : "";
      $("result-outcome").textContent = (rt["outcome_" + r.outcome] || r.outcome) + reason;
      $("result-price").textContent = r.clearing_price ? `${fmt(r.clearing_price)} / ${rt.unit}` : "—";
      $("result-volume").textContent = `${r.volume_lots} ${rt.lots}`;
      $("result-supply").textContent = `${r.supply_lots} ${rt.lots}` + (r.rollover_lots ? `（${rt.incl_rolled_over.replace("{lots}", r.rollover_lots)}）` : "");
      $("result-unsold").textContent = r.rolled_into ? rt.unsold_rolled.replace("{lots}", r.unsold_lots).replace("{listing}", r.rolled_into)
        : `${r.unsold_lots} ${rt.lots}`;
      $("result-tie").textContent = r.tie_draw ? rt.tie_draw_summary.replace("{price}", `${fmt(r.tie_draw.price)} / ${rt.unit}`)
        .replace("{count}", r.tie_draw.ranks.length).replace("{lots}", r.tie_draw.lots) : rt.no_tie;
      const outcomes = $("my-outcomes");  // the caller's own bids, how each fared (only it is told)
      if (r.own_bids && r.own_bids.length) {
        $("my-outcomes-box").hidden = false;
        outcomes.querySelectorAll("tr:not(:first-child)").forEach((tr) => tr.remove());
        r.own_bids.forEach((o) => row(outcomes, [`${fmt(o.price)} / ${rt.unit}`, `${o.lots} ${rt.lots}`, `${o.lots_won} ${rt.lots}`,
          rt["fill_" + o.fill] + (o.reason ? `（${rt["why_" + o.reason] || o.reason}）` : ""),
          o.tied ? rt.draw_position.replace("{position}", o.draw_position).replace("{count}", o.tied_bids).replace("{rank}", o.tie_rank) : "—"]));
      }
      const number = $("my-number") ? $("my-number").textContent.trim() : "";
      const mine = (r.allocations || []).filter((a) => a.bidder_number === number);
      $("result-mine").textContent = mine.length ? mine.map((a) => `${a.lots} ${rt.lots}，${fmt(a.amount)}`).join("；") : "—";
    }
    if ($("register-form")) $("register-form").onsubmit = async (ev) => {
      ev.preventDefault();
      try { const r = await api("POST", `/api/v1/listings/${listingId}/registrations`,
          {credit_code: creditCode, guarantee_fen: Math.round(Number($("guarantee").value) * 100)});
        $("my-number").textContent = r.bidder_number; say(texts.registered); $("register-form").remove();
      } catch (err) { failed(err); }
    };
    if ($("place-bid")) $("place-bid").dataset.label = $("place-bid").textContent;
    if ($("cancel-modify")) $("cancel-modify").onclick = () => { resetForm(); say(""); };
    if ($("auction-bid-form")) $("auction-bid-form").onsubmit = async (ev) => {
      ev.preventDefault();
      const body = {credit_code: creditCode, price_fen: Math.round(Number($("bid-price").value) * 100),
                    quantity_lots: Number($("bid-lots").value)};
      try {
        if (editing) { await api("POST", `/api/v1/bids/${editing}/modify`, body); say(texts.modified); }
        else { await api("POST", `/api/v1/listings/${listingId}/bids`, body); say(texts.placed); }
        resetForm(); myBids();
      } catch (err) { failed(err); }
    };
    myBids();
    if (decided) result();
  }
  function bookPage(instrument) {
    const events = new EventSource(`/api/v1/markets/${encodeURIComponent(instrument)}/events`);
    events.addEventListener("book", (e) => {
      const b = JSON.parse(e.data);
      for (const side of ["bids", "asks"]) { const t = $(side); t.innerHTML = ""; b[side].forEach((l) => row(t, [fmt(l.price), l.quantity])); }
      $("last-price").textContent = fmt(b.last_price);
    });
    const form = $("order-form");
    if (form) form.onsubmit = async (ev) => {
      ev.preventDefault();
      try { const r = await api("POST", "/api/v1/orders", {credit_code: form.dataset.creditCode, instrument, side: $("order-side").value,
          price_fen: Math.round(Number($("order-price").value) * 100), quantity: Number($("order-qty").value)});
        $("message").textContent = r.order.state;
      } catch (err) { $("message").textContent = err.message; }
    };
  }
  function agencyPage() {
    const form = $("listing-form");
    if (form) form.onsubmit = async (ev) => {
      ev.preventDefault();
      const option = $("resource").selectedOptions[0];
      // 39号令: announced ≥ 20 days before a listing period of ≥ 10 working days (the agency edits the draft to change).
      const day = 86400 * 1000, now = Date.now();
      const iso = (ms) => new Date(ms).toISOString();
      try { const l = await api("POST", "/api/v1/listings", {mechanism: "listing", title: option.textContent, resource_id: option.value,
          quantity: option.dataset.qty, unit: "亩", start_price_fen: Number($("start-price").value) * 100,
          increment_fen: Number($("increment").value) * 100, deposit_fen: Number($("deposit").value) * 100,
          countdown_seconds: 300, sale_kind: "new_industrial_land", announce_at: iso(now + day),
          bidding_opens_at: iso(now + 22 * day), bidding_closes_at: iso(now + 38 * day)});
        $("message").textContent = `${l.listing_id} ${l.state}`;
      } catch (err) { $("message").textContent = err.message; }
    };
    const upload = $("upload-form");
    if (upload) upload.onsubmit = async (ev) => {
      ev.preventDefault();
      const data = new FormData(); data.append("file", $("indicator-file").files[0]);
      const reply = await fetch("/api/v1/agency/indicators", {method: "POST", body: data, credentials: "same-origin",
        headers: {"Idempotency-Key": crypto.randomUUID()}});
      $("upload-report").textContent = JSON.stringify(await reply.json(), null, 2);
    };
  }
  return {salePage, auctionPage, bookPage, agencyPage, api};
})();

(() => {
  const page = document.body.dataset;
  if (page.page === "sale") yaosu.salePage(page.listingId);
  else if (page.page === "auction") yaosu.auctionPage(page.listingId, page.decided === "yes");
  else if (page.page === "book") yaosu.bookPage(page.instrument);
  else if (page.page === "agency") yaosu.agencyPage();
})();
