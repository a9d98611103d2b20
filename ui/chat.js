// The chat page's conversation, run in the browser (Gradio's gr.HTML js_on_load: `element`
// is the component's root, `props` its properties, `server` the Python functions ask/restore).
//
// * A question is taken from the box (and only then is the box cleared), shown at once, and
//   queued; the server is asked one question at a time, in the order they were sent, so
//   a second question sent while the first is loading keeps both turns, in order.
// * The conversation lives in localStorage per collection (props.storage_key): a reload
//   shows it again (the server re-renders the saved answers with today's documents), and a
//   question still waiting when the page went away is asked again.
// * 清空 asks first, then offers 撤销 for UNDO_MS.
// * A citation of a PDF or an image: opening its viewer asks server.page_image for the page's
//   image (a PNG data URI); the quote's box is already placed over it by the server's HTML.
(() => {
  const KEY = props.storage_key;
  const MAX_TURNS = props.max_turns || 40;
  const MAX_WAITING = 5;          // questions queued at once; more are refused (kept in the box)
  const UNDO_MS = 10000;
  const RETRY_MS = 4000;

  const $ = (sel) => element.querySelector(sel);
  const chat = $('#qa-chat');
  const dock = $('#qa-dock');
  const form = $('#qa-input');
  const box = $('#qa-question textarea');
  const askBtn = $('#qa-ask');
  const clearBtn = $('#qa-clear');
  const notice = $('#qa-notice');
  const bar = $('#qa-bar');
  const status = $('#qa-status');
  document.documentElement.lang = 'zh-CN';

  /** turns: {q, r (the saved answer record, null until answered), state, node} in order;
   *  state: 'queued' | 'asking' | 'restoring' | 'done' | 'lost' */
  let turns = [];
  let asking = false;
  let lostConnection = false;
  let undo = null;   // {turns, timer} after 清空

  // ---------------------------------------------------------------- storage
  const load = () => {
    try {
      const data = JSON.parse(localStorage.getItem(KEY) || 'null');
      return data && Array.isArray(data.turns) ? data.turns.filter((t) => t && typeof t.q === 'string') : [];
    } catch (e) { return []; }
  };
  const save = () => {
    // a saved answer the server could not read is dropped; one it could not be asked about is kept
    let keep = turns.filter((t) => !t.bad).map((t) => ({q: t.q, r: t.r || null}));
    for (;;) {
      try {
        if (keep.length) localStorage.setItem(KEY, JSON.stringify({v: 1, turns: keep}));
        else localStorage.removeItem(KEY);
        return;
      } catch (e) {                       // storage full: the oldest answers go first
        if (!keep.length) return;
        keep = keep.slice(1);
      }
    }
  };

  // ---------------------------------------------------------------- rendering
  const fromHTML = (html) => {
    const t = document.createElement('template');
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  };
  const waitingNode = (q, label) => {
    const s = document.createElement('section');
    s.className = 'qa-turn qa-turn--pending';
    const qd = document.createElement('div');
    qd.className = 'qa-question';
    const b = document.createElement('div');
    b.className = 'qa-bubble';
    b.textContent = q;
    qd.appendChild(b);
    const a = document.createElement('div');
    a.className = 'qa-answer qa-answer--pending';
    a.innerHTML = '<span class="qa-dots" aria-hidden="true"><i></i><i></i><i></i></span><span class="qa-pending-text"></span>';
    a.querySelector('.qa-pending-text').textContent = label;
    s.append(qd, a);
    return s;
  };
  const LABELS = {queued: '排队中，前一个问题回答完就查找…', asking: '正在文档中查找…',
                  restoring: '正在恢复这条回答…'};
  const nodeFor = (t) => {
    if (t.state === 'done') return fromHTML(t.html);
    if (t.state === 'lost') {
      const n = waitingNode(t.q, '');
      n.className = 'qa-turn qa-turn--lost';
      n.querySelector('.qa-answer').className = 'qa-answer qa-answer--none';
      n.querySelector('.qa-answer').textContent = '这条回答无法恢复，可以重新提问。';
      return n;
    }
    return waitingNode(t.q, LABELS[t.state]);
  };
  const renderAll = () => {
    if (!turns.length) { chat.innerHTML = props.empty_html; return; }
    const list = document.createElement('div');
    list.className = 'qa-chat';
    for (const t of turns) { t.node = nodeFor(t); list.appendChild(t.node); }
    chat.replaceChildren(list);
  };
  /** Show turn t as it is now: replace its node, or add it at the end. */
  const update = (t) => {
    const n = nodeFor(t);
    if (t.node && t.node.isConnected) { t.node.replaceWith(n); t.node = n; return; }
    let list = chat.querySelector('.qa-chat:not(.qa-chat--empty)');
    if (!list) { renderAll(); return; }     // the first turn: renderAll shows it
    list.appendChild(n);
    t.node = n;
  };
  const controls = () => {
    const waiting = turns.filter((t) => t.state === 'queued' || t.state === 'asking').length;
    const restoring = turns.some((t) => t.state === 'restoring');
    // 清空 waits until nothing is being answered; sending questions never waits: they queue
    clearBtn.disabled = waiting > 0 || restoring || !turns.length;
    clearBtn.title = waiting ? '正在回答，回答完才能清空' : '清空对话';
    element.classList.toggle('qa-busy', waiting > 0);
    askBtn.setAttribute('aria-busy', waiting > 0 ? 'true' : 'false');
  };
  const showNotice = (html) => { notice.innerHTML = html || ''; };
  const say = (text) => { status.textContent = text; };

  // keep the newest turn clear of the question box stuck to the bottom of the window
  const reveal = (node) => {
    if (!node) return;
    const covered = dock ? dock.getBoundingClientRect().height : 0;
    node.style.scrollMarginBottom = (covered + 12) + 'px';
    const fits = node.getBoundingClientRect().height + covered + 40 < window.innerHeight;
    node.scrollIntoView({block: fits ? 'end' : 'start', behavior: 'smooth'});
  };

  // ---------------------------------------------------------------- asking
  const trim = () => {
    const done = turns.filter((t) => t.state === 'done' || t.state === 'lost');
    const extra = done.length - MAX_TURNS;
    if (extra > 0) {
      const drop = new Set(done.slice(0, extra));
      for (const t of drop) if (t.node) t.node.remove();
      turns = turns.filter((t) => !drop.has(t));
    }
  };
  const pump = async () => {
    if (asking) return;
    const t = turns.find((x) => x.state === 'queued');
    if (!t) { controls(); return; }
    asking = true;
    t.state = 'asking';
    update(t);
    controls();
    say('正在查找：' + t.q);
    // the question answered before it (as answered: a follow-up's completed question), so that
    // 「那2019年呢?」 can be completed from it
    const before = turns.slice(0, turns.indexOf(t)).reverse().find((x) => x.state === 'done' && x.r);
    const previous = before && typeof before.r.question === 'string' ? before.r.question : null;
    let res = null;
    try {
      res = await server.ask({q: t.q, previous});
    } catch (e) {
      res = null;
    }
    asking = false;
    if (!turns.includes(t)) { pump(); return; }
    if (res && lostConnection) { lostConnection = false; showNotice(''); }
    if (res && res.ok) {
      t.state = 'done';
      t.html = res.html;
      t.r = res.record;
      update(t);
      trim();
      save();
      say('已回答：' + t.q);
      reveal(t.node);
    } else if (res && res.notice) {          // refused or failed: the question goes back to the box
      turns = turns.filter((x) => x !== t);
      if (t.node) t.node.remove();
      if (!turns.length) renderAll();
      save();
      showNotice(res.notice);
      if (!box.value.trim()) { box.value = t.q; resize(); }
    } else {                                 // no answer from the server: keep it, try again
      t.state = 'queued';
      update(t);
      lostConnection = true;
      showNotice('<div class="qa-notice qa-notice--error" role="alert">连接不上服务器，问题已保留，稍后自动重试。</div>');
      controls();
      setTimeout(pump, RETRY_MS);
      return;
    }
    controls();
    pump();
  };
  const tooLong = (n) => props.too_long_notice.replace('{n}', String(n));
  const warn = (text) => {
    const d = document.createElement('div');
    d.className = 'qa-notice qa-notice--warn';
    d.setAttribute('role', 'alert');
    d.textContent = text;
    notice.replaceChildren(d);
  };
  /** Take a question (from the box or an example): check, show, queue. */
  const send = (text, fromBox) => {
    const q = String(text || '').trim();
    if (!q) { warn(props.empty_notice); return false; }
    const n = Array.from(q).length;
    if (n > props.max_chars) { warn(tooLong(n)); return false; }
    if (turns.filter((t) => t.state === 'queued' || t.state === 'asking').length >= MAX_WAITING) {
      warn('前面还有 ' + MAX_WAITING + ' 个问题在等候回答，请稍后再问。');
      return false;
    }
    showNotice('');
    if (bar.classList.contains('qa-bar--confirm')) hideBar();
    const t = {q, r: null, state: 'queued'};
    turns.push(t);
    update(t);
    save();                                   // taken: from now on a reload asks it again
    if (fromBox) { box.value = ''; resize(); }
    controls();
    reveal(t.node);
    pump();
    return true;
  };

  // ---------------------------------------------------------------- the box
  const resize = () => {
    box.style.height = 'auto';
    const line = parseFloat(getComputedStyle(box).lineHeight) || 26;
    box.style.height = Math.min(box.scrollHeight, line * 6 + 12) + 'px';
  };
  const narrow = window.matchMedia('(max-width: 560px)');
  const placeholder = () => { box.placeholder = narrow.matches ? props.placeholder_short : props.placeholder; };
  placeholder();
  narrow.addEventListener('change', placeholder);
  box.addEventListener('input', resize);
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {   // not while an IME composes
      e.preventDefault();
      send(box.value, true);
    }
  });
  form.addEventListener('submit', (e) => { e.preventDefault(); send(box.value, true); box.focus(); });
  element.querySelectorAll('.qa-example').forEach((b) => {
    b.addEventListener('click', () => send(b.dataset.q || b.textContent, false));
  });

  // ---------------------------------------------------------------- 清空, confirm and undo
  let barTimer = null;
  const hideBar = () => { bar.hidden = true; bar.className = 'qa-bar'; clearTimeout(barTimer); };
  const showBar = (kind, text, yes, no, onYes) => {
    hideBar();
    bar.className = 'qa-bar qa-bar--' + kind;
    bar.querySelector('.qa-bar-text').textContent = text;
    const y = bar.querySelector('.qa-bar-yes');
    const n = bar.querySelector('.qa-bar-no');
    y.textContent = yes;
    n.textContent = no;
    n.hidden = !no;
    y.onclick = () => { hideBar(); onYes(); };
    n.onclick = () => { hideBar(); clearBtn.focus(); };
    bar.hidden = false;
    y.focus();
  };
  bar.addEventListener('keydown', (e) => { if (e.key === 'Escape') { hideBar(); clearBtn.focus(); } });
  clearBtn.addEventListener('click', () => {
    const done = turns.filter((t) => t.state === 'done' || t.state === 'lost');
    if (!done.length || clearBtn.disabled) return;
    showBar('confirm', '清空全部 ' + done.length + ' 轮对话？', '清空', '取消', () => {
      undo = turns.slice();
      turns = [];
      renderAll();
      save();
      showNotice('');
      controls();
      say('对话已清空');
      showBar('undo', '对话已清空。', '撤销', '', () => {
        turns = undo.concat(turns);
        undo = null;
        renderAll();
        save();
        controls();
        say('对话已恢复');
        box.focus();
      });
      barTimer = setTimeout(() => { hideBar(); undo = null; }, UNDO_MS);
    });
  });

  // ---------------------------------------------------------------- the document panel
  const toMark = (details) => {
    const body = details.querySelector('.qa-doc-body');
    const mark = body && body.querySelector('mark.qa-hl');
    if (!mark) return;
    body.scrollTop = Math.max(0, mark.offsetTop - body.clientHeight / 3);
  };
  // A citation of a PDF or an image: its page's image, asked for when the viewer first opens
  // (server.page_image renders it then), the quote's box already placed over it by the server's HTML.
  const pageImages = new Map();     // "doc key|page" → the server's answer (a promise), per page
  const PAGE_FAILED = '页面图像载入失败，这里只显示文字版。';
  const toBox = (fig) => {
    const view = fig.querySelector('.qa-page-view');
    const box = fig.querySelector('.qa-page-box');
    if (!view || !box || view.hidden) return;
    view.scrollTop = Math.max(0, box.offsetTop - view.clientHeight / 3);
    view.scrollLeft = Math.max(0, box.offsetLeft - view.clientWidth / 3);
  };
  const loadPage = async (details) => {
    const fig = details.querySelector('figure.qa-page');
    if (!fig || fig.dataset.state) return;
    fig.dataset.state = 'loading';
    const cite = details.closest('.qa-cite');
    const doc = cite ? cite.dataset.docId : '';
    const page = parseInt(fig.dataset.page, 10);
    const key = doc + '|' + page;
    if (!pageImages.has(key)) {
      const p = server.page_image({doc, page, script: fig.dataset.script || 'simplified'})
        .catch(() => null);
      pageImages.set(key, p);
      p.then((r) => { if (!r || !r.ok) pageImages.delete(key); });   // a failure may be asked again
    }
    const res = await pageImages.get(key);
    const note = fig.querySelector('.qa-page-note');
    const img = fig.querySelector('.qa-page-img');
    const view = fig.querySelector('.qa-page-view');
    if (res && res.ok && typeof res.src === 'string' && res.src.startsWith('data:image/')) {
      img.width = res.width;
      img.height = res.height;
      const shown = new Promise((done) => { img.onload = done; img.onerror = done; });
      img.src = res.src;
      await shown;
      if (img.naturalWidth) {
        img.hidden = false;
        view.hidden = false;
        fig.dataset.state = 'ready';
        fig.classList.add('qa-page--ready');
        note.textContent = res.note || '';
        note.hidden = !res.note;
        if (details.open) toBox(fig);
        return;
      }
    }
    if (!res) {                          // no answer from the server: opening it again asks again
      delete fig.dataset.state;
      note.textContent = PAGE_FAILED;
      return;
    }
    fig.dataset.state = 'none';
    fig.classList.add('qa-page--none');
    view.remove();                       // the text version only, and why
    note.textContent = (res && typeof res.note === 'string' && res.note) || PAGE_FAILED;
  };
  element.addEventListener('toggle', (e) => {
    const d = e.target;
    if (d && d.matches && d.matches('details.qa-doc') && d.open) {
      toMark(d);
      const fig = d.querySelector('figure.qa-page');
      if (fig && fig.dataset.state === 'ready') toBox(fig);
      else loadPage(d);
    }
  }, true);

  // ---------------------------------------------------------------- Gradio's upload box, in Chinese
  // Its button and file input carry fixed English names for screen readers; give them Chinese
  // ones (the button's is its visible text), whenever Gradio renders them again.
  const nameUpload = () => {
    document.querySelectorAll('#qa-upload-files button.upload-container[aria-label]').forEach((b) => {
      b.removeAttribute('aria-label');
    });
    document.querySelectorAll('#qa-upload-files input[type=file]:not([aria-label="选择要上传的文件"])').forEach((i) => {
      i.setAttribute('aria-label', '选择要上传的文件');
    });
  };
  const root = element.closest('.gradio-container') || document.body;
  new MutationObserver(nameUpload).observe(root, {childList: true, subtree: true});
  nameUpload();

  // ---------------------------------------------------------------- start: the saved conversation
  const start = async () => {
    const saved = load().slice(-(MAX_TURNS + MAX_WAITING));
    turns = saved.map((x) => ({q: x.q, r: x.r || null, state: x.r ? 'restoring' : 'queued'}));
    renderAll();
    controls();
    const restoring = turns.filter((t) => t.state === 'restoring');
    if (restoring.length) {
      let html = null;
      try { html = await server.restore({records: restoring.map((t) => t.r)}); } catch (e) { html = null; }
      restoring.forEach((t, i) => {
        if (!turns.includes(t)) return;
        const h = Array.isArray(html) ? html[i] : null;
        if (typeof h === 'string' && h) { t.state = 'done'; t.html = h; } else { t.state = 'lost'; t.bad = html !== null; }
        update(t);
      });
      save();
      controls();
      const last = turns[turns.length - 1];
      if (last && last.node) last.node.scrollIntoView({block: 'end'});
    }
    pump();
  };
  chat.dataset.ready = '1';     // listeners bound: the page takes questions from now on
  start();
})();
