// Click-to-dial: a Call button next to a number (call log, phonebook) and a dial box.
// The box rings the user's own phone first; once it is picked up, the number is called.
// The server routes the number as if the phone had dialled it, so a blocked number is
// refused here with its reason and the phone never rings.

import { post } from './api.js';
import { h, field, formAlert, showError } from './dom.js';
import { t, tf, trError } from './i18n.js';

// What can be dialled: digits with an optional leading +, separators ignored (as the
// server cleans them; anything else it would refuse).
export function dialable(number) {
  const n = String(number || '').replace(/[\s\-/().]/g, '');
  return /^\+?[0-9]{1,32}$/.test(n) ? n : null;
}

function result(main, text, isError) {
  const old = main.querySelector('.dial-result');
  if (old) old.remove();
  main.querySelector('h1').after(h('p', { class: `${isError ? 'alert' : 'notice'} dial-result`, role: 'status' }, text));
}

async function dial(main, number) {
  try {
    const r = await post('/api/v1/me/dial', { number });
    result(main, tf(t('Your phone {ext} is ringing: pick it up to call {number}.'), { ext: r.extension, number: r.number }));
    return null;
  } catch (e) {
    result(main, `${tf(t('{number} was not called:'), { number })} ${trError(e.message)}`, true);
    return e;
  }
}

// A Call button for `number`, or nothing when the account has no extension or the
// number cannot be dialled (anonymous, a SIP address).
export function dialButton(main, session, number) {
  const n = session.extension && dialable(number);
  if (!n) return '';
  return h('button', {
    type: 'button', class: 'secondary dial', 'data-dial': n,
    'aria-label': tf(t('Call {number}'), { number: n }),
    onclick: () => dial(main, n),
  }, t('Call'));
}

// A small form to dial any number (for accounts with an extension).
export function dialBox(main, session) {
  if (!session.extension) return '';
  const form = h('form', { class: 'grid', id: 'dial-box', novalidate: true },
    field(t('Number to call'), 'number', { inputmode: 'tel', autocomplete: 'off', maxlength: '64' }),
    formAlert(), h('button', { type: 'submit' }, t('Call')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(form, null);
    const e = await dial(main, form.elements.number.value);
    if (e && e.field === 'number') showError(form, e);
  });
  return h('div', { class: 'card' }, h('h2', {}, tf(t('Call from your phone {ext}'), { ext: session.extension })), form);
}
