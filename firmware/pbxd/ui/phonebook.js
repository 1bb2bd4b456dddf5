// A user's own data: the personal phonebook page and the note editor of the call log.
// Everything is per account; the server enforces it (others' calls answer 404).

import { get, post, put, del } from './api.js';
import { h, clear, field, formAlert, table, showError } from './dom.js';
import { t } from './i18n.js';
import { dialButton } from './dial.js';

// Numbers typed as one line: "0211 123, +49 170 555" → ["0211 123", "+49 170 555"].
const splitNumbers = (s) => s.split(/[,;]/).map((n) => n.trim()).filter((n) => n);

function flash(main, text, isError) {
  const old = main.querySelector('.flash');
  if (old) old.remove();
  main.querySelector('h1').after(h('p', { class: `${isError ? 'alert' : 'notice'} flash`, role: 'status' }, text));
}

// The note of one call-log row: its text and an Edit button that opens a small form.
export function noteCell(r, main) {
  const cell = h('td', { class: 'note', 'data-call': String(r.id) });
  const show = (note) => {
    clear(cell).append(
      h('span', { class: 'note-text' }, note || ''), ' ',
      h('button', { type: 'button', class: 'secondary', 'data-action': 'note', onclick: () => edit(note) },
        note ? t('Edit note') : t('Add note')));
  };
  const edit = (note) => {
    const form = h('form', { class: 'note-form', novalidate: true },
      h('label', {}, t('Note'), h('textarea', { name: 'note', maxlength: '500', rows: '2' }, note || ''),
        h('span', { class: 'error', 'data-error-for': 'note', role: 'alert' })),
      formAlert(),
      h('button', { type: 'submit' }, t('Save note')),
      note ? h('button', { type: 'button', class: 'danger', onclick: async () => {
        try { await del(`/api/v1/cdr/${r.id}/note`); show(null); flash(main, t('Note deleted.')); } catch (e) { showError(form, e); }
      } }, t('Delete note')) : '',
      h('button', { type: 'button', class: 'secondary', onclick: () => show(note) }, t('Cancel')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      showError(form, null);
      try {
        const saved = await put(`/api/v1/cdr/${r.id}/note`, { note: form.elements.note.value });
        show(saved.note);
        flash(main, t('Note saved.'));
      } catch (e) { showError(form, e); }
    });
    clear(cell).append(form);
    form.elements.note.focus();
  };
  show(r.note);
  return cell;
}

// The personal phonebook: search, add, edit, delete, CSV import and export.
export async function phonebook(main, ctx) {
  const list = h('div', { id: 'phonebook-list' });
  const search = h('form', { class: 'grid', id: 'phonebook-search', role: 'search', novalidate: true },
    field(t('Search name or number'), 'q', { type: 'search' }), formAlert(),
    h('button', { type: 'submit' }, t('Search')));
  const refresh = async () => {
    const q = search.elements.q.value.trim();
    let rows;
    try {
      rows = await get(`/api/v1/me/phonebook${q ? `?q=${encodeURIComponent(q)}` : ''}`);
    } catch (e) { showError(search, e); return; }
    const trs = rows.map((c) => h('tr', { 'data-contact': String(c.id) },
      h('td', {}, c.name),
      h('td', {}, c.numbers.flatMap((n, i) => [i ? ', ' : '', n, ' ', dialButton(main, ctx.session, n)])),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => editForm(c) }, t('Edit')),
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirm(`${t('Delete this entry?')} ${c.name}`)) return;
          try { await del(`/api/v1/me/phonebook/${c.id}`); await refresh(); flash(main, t('Entry deleted.')); } catch (e) { flash(main, e.message, true); }
        } }, t('Delete')))));
    clear(list).append(trs.length ? table([t('Name'), t('Numbers'), t('Actions')], trs)
      : h('p', { class: 'muted' }, q ? t('No entry matches.') : t('Your phonebook is empty.')));
  };
  search.addEventListener('submit', (ev) => { ev.preventDefault(); refresh(); });

  const editBox = h('div', { id: 'contact-edit' });
  const contactForm = (id, c, done) => {
    const form = h('form', { class: 'grid', id, novalidate: true },
      field(t('Name'), 'name', { value: c ? c.name : '', maxlength: '64' }),
      field(t('Numbers (separate with commas)'), 'numbers', { value: c ? c.numbers.join(', ') : '', inputmode: 'tel' }),
      formAlert(), h('button', { type: 'submit' }, c ? t('Save entry') : t('Add entry')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      showError(form, null);
      const body = { name: form.elements.name.value, numbers: splitNumbers(form.elements.numbers.value) };
      try {
        if (c) await put(`/api/v1/me/phonebook/${c.id}`, body); else await post('/api/v1/me/phonebook', body);
        await done(form);
      } catch (e) { showError(form, e); }
    });
    return form;
  };
  const editForm = (c) => {
    clear(editBox).append(h('h2', {}, `${t('Change entry')}: ${c.name}`),
      contactForm('contact-edit-form', c, async () => { clear(editBox); await refresh(); flash(main, t('Entry saved.')); }));
  };
  const addForm = contactForm('contact-add-form', null, async (form) => {
    form.reset();
    await refresh();
    flash(main, t('Entry added.'));
  });

  const importForm = h('form', { class: 'grid', id: 'phonebook-import', novalidate: true },
    h('p', { class: 'muted' }, t('CSV lines: name, then up to five numbers. A header line is skipped. A file with a bad line is refused whole.')),
    field(t('CSV file'), 'file', { type: 'file', accept: '.csv,text/csv' }),
    formAlert(), h('ul', { class: 'error', id: 'import-errors' }),
    h('button', { type: 'submit' }, t('Import')));
  importForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(importForm, null);
    const errs = importForm.querySelector('#import-errors');
    clear(errs);
    const file = importForm.elements.file.files[0];
    if (!file) { showError(importForm, { field: 'file', message: t('Choose a CSV file.') }); return; }
    try {
      const res = await post('/api/v1/me/phonebook/import', { csv: await file.text() });
      importForm.reset();
      await refresh();
      flash(main, `${t('Entries imported')}: ${res.imported}`);
    } catch (e) {
      showError(importForm, e.field === 'csv' ? { message: e.message } : e);
      for (const l of e.lines || []) errs.append(h('li', {}, `${t('Line')} ${l.line}: ${l.error}`));
    }
  });

  main.append(
    h('div', { class: 'card' }, search),
    list,
    editBox,
    h('div', { class: 'card' }, h('h2', {}, t('Add an entry')), addForm),
    h('div', { class: 'card' }, h('h2', {}, t('Import and export')), importForm,
      h('p', {}, h('a', { id: 'phonebook-csv', href: '/api/v1/me/phonebook.csv', download: 'phonebook.csv' }, t('Download as CSV')))));
  await refresh();
}
