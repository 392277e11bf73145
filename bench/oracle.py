"""The generated data's learnable ceiling: its true functional form, fitted from clicks.

The Bayes row of ``bench/quality`` (the true click probability) is out of reach of any
model: it knows the 200k user, 120k ad and 4k campaign effects exactly, which the
training rows show a few times each. This oracle is what a model that *knew the
generator's form* (:meth:`datagen.synthetic.SyntheticWorld.click_logit`) could learn from
the training clicks alone: a logistic regression whose design has one column per cell of
every table of that form (user, ad and campaign effects; inventory; gender x age; age x
category; inventory x hour; gender x age x day; the action's three tables; and the
numeric interaction per inventory, so that which inventory is premium is learnt too) and
one per dense term (the diurnal sine, the three linear numeric terms, the sequence
match). Its L2 strength is chosen on the eval split. ``ids=False`` leaves the user, ad
and campaign columns out: the ceiling of a model that learns only the global structure.

A deep model's distance to this row is the part of the gap to Bayes it could close.

:func:`learned` says which parts: it splits the true click logit into the generator's
terms (:func:`terms`) and regresses a model's test logit on them (least squares, with an
intercept). A term's coefficient is the fraction of it that the model's logit carries: 1
when learned in full, 0 when ignored. The per-id and per-cell terms can only be learned
up to the noise of their few clicks, so a coefficient below 1 there is partly the
shrinkage a good estimate needs; a term near 0 is one the model cannot represent.
"""
import numpy as np

from datagen import synthetic

CS = (0.03, 0.1, 0.3, 1.0)   # inverse L2 strengths tried (sklearn's C), chosen on eval


def design(table, ids: bool = True):
  """The oracle's sparse design matrix of ``table``'s rows (columns are fixed by the
  generator's constants, so every split gets the same ones)."""
  from scipy import sparse
  c = synthetic.table_columns(table)
  n = table.num_rows
  g, age, inv = c['gender'], c['age_group'], c['inventory_id']
  hour, dow, a = c['hour'], c['day_of_week'], c['action']
  cat = c['ad_category']
  cells = [(inv, synthetic.N_INVENTORY),
           (g * synthetic.N_AGE_GROUPS + age, 2 * synthetic.N_AGE_GROUPS),
           (age * synthetic.N_CATEGORIES + cat, synthetic.N_AGE_GROUPS * synthetic.N_CATEGORIES),
           (inv * 24 + hour, synthetic.N_INVENTORY * 24),
           ((g * synthetic.N_AGE_GROUPS + age) * 7 + dow, 2 * synthetic.N_AGE_GROUPS * 7),
           (a, synthetic.N_ACTIONS),
           (inv * synthetic.N_ACTIONS + a, synthetic.N_INVENTORY * synthetic.N_ACTIONS),
           (age * synthetic.N_ACTIONS + a, synthetic.N_AGE_GROUPS * synthetic.N_ACTIONS)]
  if ids:
    cells += [(c['user_id'], synthetic.N_USERS), (c['ad_id'], synthetic.N_ADS),
              (c['campaign_id'], synthetic.N_CAMPAIGNS)]
  blocks = []
  for index, size in cells:
    index = np.clip(np.asarray(index, np.int64), 0, size - 1)
    blocks.append(sparse.csr_matrix((np.ones(n), (np.arange(n), index)), shape=(n, size)))
  z = lambda name: synthetic._z(name, c[name].astype(np.float64))  # noqa: E731
  tokens, offsets = synthetic.parse_seq(table.column('seq').to_pylist())
  match = synthetic.sequence_match(tokens, offsets, cat)
  product = np.tanh(z('l_feat_0')) * np.tanh(z('feat_1'))
  blocks.append(sparse.csr_matrix((product, (np.arange(n), inv)),
                                  shape=(n, synthetic.N_INVENTORY)))
  dense = np.stack([np.sin(2 * np.pi * (hour - 14) / 24), z('history_0'), z('l_feat_1'),
                    z('feat_2'), np.minimum(match, 3)], axis=1)
  blocks.append(sparse.csr_matrix(dense))
  return sparse.hstack(blocks, format='csr')


# The generator's click-logit terms (datagen.synthetic.SyntheticWorld.click_logit).
TERMS = ('user', 'ad', 'campaign', 'inventory', 'diurnal', 'gender_x_age', 'age_x_category',
         'inventory_x_hour', 'gender_x_age_x_day', 'premium_numeric', 'dense_linear',
         'sequence_match', 'action')


def terms(table, world):
  """{term: [rows]}: the true click logit of ``table``'s rows under ``world``, split into
  :data:`TERMS`; they sum to ``world.click_logit`` less its constant (a test checks it)."""
  c = synthetic.table_columns(table)
  tokens, offsets = synthetic.parse_seq(table.column('seq').to_pylist())
  ad = c['ad_id']
  cat = world.ad_category[ad]
  match = synthetic.sequence_match(tokens, offsets, cat)
  z = lambda name: synthetic._z(name, c[name].astype(np.float64))  # noqa: E731
  g, age, inv, hour = c['gender'], c['age_group'], c['inventory_id'], c['hour']
  a = c['action']
  premium = np.isin(inv, world.premium_inventory)
  values = (0.6 * world.u_bias[c['user_id']], 0.5 * world.d_bias[ad],
            0.3 * world.c_bias[world.ad_campaign[ad]], world.inv_eff[inv],
            0.3 * np.sin(2 * np.pi * (hour - 14) / 24), world.ga[g, age],
            world.ac[age, cat], world.ih[inv, hour], world.gad[g, age, c['day_of_week']],
            0.5 * np.tanh(z('l_feat_0')) * np.tanh(z('feat_1')) * premium,
            0.25 * z('history_0') + 0.2 * z('l_feat_1') - 0.15 * z('feat_2'),
            0.35 * np.minimum(match, 3),
            world.act[a] + world.act_inv[inv, a] + world.act_age[age, a])
  return dict(zip(TERMS, (np.asarray(v, np.float64) for v in values)))


def learned(table, probabilities, world):
  """{term: coefficient} of the least-squares fit of ``probabilities``' logit on
  :func:`terms` (module docstring), and ``residual_sd``: what the terms leave of it."""
  from trainer.layers.calibration import logit as logit_of
  logit = logit_of(probabilities)
  t = terms(table, world)
  x = np.column_stack([np.ones(len(logit))] + [t[k] for k in TERMS])
  coef, *_ = np.linalg.lstsq(x, logit, rcond=None)
  out = {k: float(b) for k, b in zip(TERMS, coef[1:])}
  out['residual_sd'] = float(np.std(logit - x @ coef))
  return out


def fit(tables, label: str = 'clicked', ids: bool = True):
  """{'eval', 'test'}: the oracle's probabilities, and the chosen C."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.metrics import log_loss
  x = {k: design(tables[k], ids) for k in ('train', 'eval', 'test')}
  y = {k: tables[k].column(label).to_numpy().astype(np.float64) for k in x}
  best = None
  for C in CS:
    model = LogisticRegression(C=C, max_iter=300, tol=1e-6).fit(x['train'], y['train'])
    loss = log_loss(y['eval'], model.predict_proba(x['eval'])[:, 1])
    if best is None or loss < best[0]:
      best = (loss, C, model)
  _, C, model = best
  return {'eval': model.predict_proba(x['eval'])[:, 1],
          'test': model.predict_proba(x['test'])[:, 1], 'C': C}
