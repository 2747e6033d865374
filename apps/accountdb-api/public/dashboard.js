// The dashboard: plain browser JavaScript, no build step, no CDN. Data comes from the admin JSON
// routes with the bearer token from sign-in (kept in sessionStorage); every value is written with
// textContent, never as HTML. Raw numbers sit in data-value attributes beside their formatted text.
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'accountdb.dashboard.token';
  const POOL_POINTS = 120;
  let token = sessionStorage.getItem(TOKEN_KEY);
  let poolTimer;
  let statsTimer;
  let poolChart;
  let tablesChart;
  const poolSeries = [[], [], [], []]; // time, active, idle, waiting
  let poolUpdates = 0;

  function formatBytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    let v = n;
    while (Math.abs(v) >= 10240 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return i === 0 ? `${Math.round(v)} bytes` : `${Math.round(v)} ${units[i]}`;
  }
  const percent = (f) => (f === null || f === undefined ? '–' : `${(f * 100).toFixed(f < 0.01 ? 3 : 1)} %`);

  function cell(text, value, numeric) {
    const td = document.createElement('td');
    td.textContent = text;
    if (value !== undefined && value !== null) td.dataset.value = String(value);
    if (numeric) td.className = 'num';
    return td;
  }
  function fill(tableId, rows, toCells) {
    const body = $(tableId).tBodies[0];
    body.replaceChildren(
      ...rows.map((row) => {
        const tr = document.createElement('tr');
        tr.append(...toCells(row));
        return tr;
      }),
    );
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('none');
      td.colSpan = $(tableId).tHead.rows[0].cells.length;
      tr.append(td);
      body.append(tr);
    }
  }
  function setValue(id, text, value) {
    const el = $(id);
    el.textContent = text;
    if (value !== undefined) el.dataset.value = String(value);
  }

  async function api(path, init = {}) {
    const response = await fetch(path, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}) },
    });
    if (response.status === 401 || response.status === 403) {
      signOut(response.status === 403 ? 'this account is not an admin' : 'session expired: sign in again');
      throw new Error(`HTTP ${response.status}`);
    }
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  function renderPool(s) {
    poolUpdates++;
    setValue('pool-active', String(s.active), s.active);
    setValue('pool-idle', String(s.idle), s.idle);
    setValue('pool-waiting', String(s.waiting), s.waiting);
    setValue('pool-total', String(s.total), s.total);
    setValue('pool-max', String(s.max), s.max);
    setValue('pool-acquires', String(s.acquires), s.acquires);
    setValue('pool-timeouts', String(s.acquireTimeouts), s.acquireTimeouts);
    $('pool-active-bar').style.width = `${(100 * s.active) / Math.max(1, s.max)}%`;
    $('pool-idle-bar').style.width = `${(100 * s.idle) / Math.max(1, s.max)}%`;
    $('pool-updates').textContent = String(poolUpdates);
    const now = Date.now() / 1000;
    const values = [now, s.active, s.idle, s.waiting];
    values.forEach((v, i) => {
      poolSeries[i].push(v);
      if (poolSeries[i].length > POOL_POINTS) poolSeries[i].shift();
    });
    if (!poolChart) {
      poolChart = new uPlot(
        {
          width: Math.max(320, $('pool-chart').clientWidth || 800),
          height: 180,
          series: [
            {},
            { label: 'active', stroke: '#3a6df0', width: 2 },
            { label: 'idle', stroke: '#2fa36b', width: 2 },
            { label: 'waiting', stroke: '#e0533d', width: 2 },
          ],
          scales: { y: { range: (_u, _min, max) => [0, Math.max(max, s.max)] } },
        },
        poolSeries,
        $('pool-chart'),
      );
    } else {
      poolChart.setData(poolSeries);
    }
  }

  function renderStats(st) {
    setValue('db-name', st.size.database);
    setValue('db-size', formatBytes(st.size.sizeBytes), st.size.sizeBytes);
    setValue('db-connections', `${st.connections.total} of ${st.connections.max}`, st.connections.total);
    setValue('db-cache-hit', percent(st.cacheHitRatios.tables), st.cacheHitRatios.tables);
    fill('wraparound', st.wraparound.databases, (d) => [
      cell(d.database),
      cell(String(d.xidAge), d.xidAge, true),
      cell(percent(d.xidFractionToWraparound), d.xidFractionToWraparound, true),
      cell(String(d.mxidAge), d.mxidAge, true),
    ]);
    const largest = st.tableSizes.slice(0, 10);
    fill('largest-tables', largest, (t) => [
      cell(`${t.schema}.${t.name}`, `${t.schema}.${t.name}`),
      cell(formatBytes(t.totalBytes), t.totalBytes, true),
      cell(formatBytes(t.tableBytes), t.tableBytes, true),
      cell(formatBytes(t.indexBytes), t.indexBytes, true),
    ]);
    const bars = [largest.map((_t, i) => i), largest.map((t) => t.totalBytes / 1024)];
    if (!tablesChart) {
      tablesChart = new uPlot(
        {
          width: Math.max(320, $('tables-chart').clientWidth || 800),
          height: 160,
          scales: { x: { time: false } },
          axes: [{ values: (_u, ticks) => ticks.map((i) => largest[i]?.name ?? '') }, { label: 'kB' }],
          series: [{}, { label: 'total kB', fill: '#3a6df055', stroke: '#3a6df0', paths: uPlot.paths.bars({ size: [0.6] }) }],
        },
        bars,
        $('tables-chart'),
      );
    } else {
      tablesChart.setData(bars);
    }
    const unused = new Set(st.unusedIndexes.map((i) => `${i.schema}.${i.name}`));
    fill('index-usage', st.indexUsage, (i) => {
      const tag = cell('');
      if (unused.has(`${i.schema}.${i.name}`)) {
        const span = document.createElement('span');
        span.className = 'tag';
        span.textContent = 'unused';
        tag.append(span);
      }
      return [
        cell(i.name, i.name),
        cell(i.table),
        cell(String(i.scans), i.scans, true),
        cell(formatBytes(i.sizeBytes), i.sizeBytes, true),
        tag,
      ];
    });
    fill('duplicate-indexes', st.duplicateIndexes, (d) => [
      cell(d.name, d.name),
      cell(d.coveredBy),
      cell(d.relation),
      cell(formatBytes(d.sizeBytes), d.sizeBytes, true),
    ]);
    const bloat = [...st.tableBloat, ...st.indexBloat]
      .filter((b) => b.wastedBytes !== null)
      .sort((a, b) => b.wastedBytes - a.wastedBytes)
      .slice(0, 10);
    fill('bloat', bloat, (b) => [
      cell(b.index ? `${b.schema}.${b.index}` : `${b.schema}.${b.table}`),
      cell(formatBytes(b.sizeBytes), b.sizeBytes, true),
      cell(`${formatBytes(b.wastedBytes)} (${percent(b.wastedFraction)})`, b.wastedBytes, true),
    ]);
    const sequences = [...st.sequences].sort((a, b) => (b.usedFraction ?? 0) - (a.usedFraction ?? 0)).slice(0, 10);
    fill('sequences', sequences, (s) => [
      cell(`${s.schema}.${s.name}`, `${s.schema}.${s.name}`),
      cell(percent(s.usedFraction), s.usedFraction, true),
      cell(`${s.lastValue ?? '–'} / ${s.maxValue}`, s.lastValue, true),
    ]);
    fill('long-running', st.longRunningQueries, (q) => [
      cell(String(q.pid), q.pid),
      cell(q.user ?? ''),
      cell(q.state ?? ''),
      cell(`${((q.queryMs ?? 0) / 1000).toFixed(1)} s`, q.queryMs, true),
      cell((q.query ?? '').slice(0, 200)),
    ]);
    const list = $('blocked');
    const node = (n) => {
      const li = document.createElement('li');
      li.textContent = `pid ${n.pid}${n.session?.query ? `: ${n.session.query.slice(0, 120)}` : ''}`;
      if (n.blocking.length) {
        const ul = document.createElement('ul');
        ul.append(...n.blocking.map(node));
        li.append(ul);
      }
      return li;
    };
    list.replaceChildren(...st.blockedQueries.map(node));
    if (st.blockedQueries.length === 0) list.textContent = 'none';
  }

  function renderMigrations(m) {
    const applied = m.entries.filter((e) => e.state === 'applied').length;
    setValue(
      'migrations-summary',
      `${applied} applied, ${m.pending.length} pending, ${m.failed.length} failed, ${m.drift.length} drifted`,
      applied,
    );
    fill('migrations', m.entries, (e) => [
      cell(e.file, e.file),
      cell(e.state, e.state),
      cell(e.appliedAt ? new Date(e.appliedAt).toLocaleString() : '–'),
    ]);
  }

  function renderPlan(p) {
    setValue(
      'plan-summary',
      `${p.steps.length} step${p.steps.length === 1 ? '' : 's'} (bloat: ${p.bloatSource})`,
      p.steps.length,
    );
    fill('plan', p.steps, (s) => [cell(s.action, s.action), cell(s.relation, s.relation), cell(s.reason)]);
  }

  async function refreshPool() {
    try {
      renderPool(await api('/admin/pool'));
    } catch (err) {
      $('status').textContent = `pool: ${err.message}`;
    }
  }

  async function refreshAll() {
    const [stats, migrations, plan] = await Promise.all([
      api('/admin/stats'),
      api('/admin/migrations'),
      api('/admin/maintenance/plan'),
    ]);
    renderStats(stats);
    renderMigrations(migrations);
    renderPlan(plan);
    $('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = 'true';
  }

  function showBoard() {
    $('sign-in').hidden = true;
    $('board').hidden = false;
    $('refresh').hidden = false;
    $('sign-out').hidden = false;
    refreshAll().catch((err) => {
      $('status').textContent = err.message;
    });
    refreshPool();
    poolTimer = setInterval(refreshPool, 1000);
    statsTimer = setInterval(
      () =>
        refreshAll().catch((err) => {
          $('status').textContent = err.message;
        }),
      15000,
    );
  }

  function signOut(message) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(poolTimer);
    clearInterval(statsTimer);
    $('board').hidden = true;
    $('refresh').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    $('status').textContent = 'signed out';
    $('sign-in-error').textContent = message ?? '';
  }

  $('sign-in').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('sign-in-error').textContent = '';
    const response = await fetch('/auth/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: $('email').value, password: $('password').value }),
    });
    if (!response.ok) {
      $('sign-in-error').textContent = 'wrong e-mail or password';
      return;
    }
    const body = await response.json();
    if (body.role !== 'admin') {
      $('sign-in-error').textContent = 'this account is not an admin';
      return;
    }
    token = body.token;
    sessionStorage.setItem(TOKEN_KEY, token);
    showBoard();
  });
  $('refresh').addEventListener('click', () =>
    refreshAll().catch((err) => {
      $('status').textContent = err.message;
    }),
  );
  $('sign-out').addEventListener('click', () => signOut());
  $('dry-run').addEventListener('click', async () => {
    const report = await api('/admin/maintenance/run', { method: 'POST', body: '{}' });
    $('dry-run-result').textContent =
      report.results.map((r) => `${r.status}: ${r.sql ?? r.step?.sql ?? ''}`).join('\n') || 'nothing to do';
  });

  if (token) showBoard();
})();
