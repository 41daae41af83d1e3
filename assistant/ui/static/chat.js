
window.__eaSourcePanel = element;
if (!window.__eaMarkersBound) {
  window.__eaMarkersBound = true;
  // The chat's sanitiser drops data-* attributes, so a marker's key travels as class "ea-k-<turn>-<n>".
  const markerKey = (m) => {
    const c = [...m.classList].find((x) => x.startsWith('ea-k-'));
    return c ? c.slice(5) : null;
  };
  const show = (marker) => {
    const panel = window.__eaSourcePanel;
    const key = markerKey(marker);
    if (!panel || !key) return;
    let found = false;
    panel.querySelectorAll('[data-cite]').forEach((p) => {
      const on = p.dataset.cite === key;
      p.hidden = !on;
      found = found || on;
    });
    panel.querySelectorAll('.ea-hint').forEach((h) => { h.hidden = found; });
    const mark = panel.querySelector('[data-cite]:not([hidden]) mark');
    if (mark) mark.scrollIntoView({ block: 'nearest' });
    document.querySelectorAll('.ea-marker').forEach((m) => m.classList.toggle('ea-active', markerKey(m) === key));
  };
  // The plain text of a message: its .ea-copytext lines (answers) or its own text (questions).
  const plainText = (msg) => {
    const lines = msg.querySelectorAll('.ea-copytext > span');
    return lines.length ? [...lines].map((s) => s.textContent).join('\n') : msg.textContent;
  };
  const copy = async (button) => {
    const msg = button.closest('.ea-msg');
    if (!msg) return;
    const text = plainText(msg);
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {  // no clipboard API (plain http to another host): the old way
      const area = document.createElement('textarea');
      area.value = text;
      area.style.position = 'fixed';
      area.style.left = '-9999px';
      document.body.appendChild(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    button.textContent = 'Copied';
    button.classList.add('ea-copied');
    setTimeout(() => { button.textContent = 'Copy'; button.classList.remove('ea-copied'); }, 1500);
  };
  const markerOf = (event) => event.target && event.target.closest ? event.target.closest('.ea-marker') : null;
  document.addEventListener('click', (event) => {
    const copyButton = event.target && event.target.closest ? event.target.closest('.ea-copy') : null;
    if (copyButton) { event.preventDefault(); event.stopPropagation(); copy(copyButton); return; }
    const marker = markerOf(event);
    if (marker) { event.preventDefault(); show(marker); }
  }, true);
  document.addEventListener('mouseover', (event) => { const m = markerOf(event); if (m) show(m); });
  document.addEventListener('focusin', (event) => { const m = markerOf(event); if (m) show(m); });
  // Gradio labels each message "<role>'s message: <content>", i.e. with our HTML: relabel it with
  // the message's plain text once the message is rendered (a later change of either relabels again).
  const relabel = (el) => {
    const label = el.getAttribute('aria-label') || '';
    const m = label.match(/^([\w ]+'s message: )/);
    const msg = el.querySelector('.ea-msg');
    if (!m || !label.includes('class="ea-msg') || !msg) return;  // only our markup (a question may hold '<')
    el.setAttribute('aria-label', m[1] + plainText(msg).replace(/\s+/g, ' ').trim());
  };
  const relabelAll = () => document.querySelectorAll(`[aria-label*='class="ea-msg']`).forEach(relabel);
  new MutationObserver(relabelAll).observe(document.body, { subtree: true, childList: true, attributes: true,
                                                           attributeFilter: ['aria-label'] });
  relabelAll();
}
