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
    function showState(s) {
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
  return {salePage, bookPage, agencyPage, api};
})();

(() => {
  const page = document.body.dataset;
  if (page.page === "sale") yaosu.salePage(page.listingId);
  else if (page.page === "book") yaosu.bookPage(page.instrument);
  else if (page.page === "agency") yaosu.agencyPage();
})();
