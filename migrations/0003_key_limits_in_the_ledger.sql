-- A limited key's remaining quota equals the sum of the key_amount_units of its ledger rows, as a
-- user's balance equals the sum of their amount_units: setting a key's limit is an ADJUST row
-- (amount_units 0) that brings the sum to the new limit. Keys issued before had no row for their
-- opening limit; each limited key gets one now.
INSERT INTO ledger (user_id, api_key_id, kind, amount_units, key_amount_units, source, reason)
SELECT k.user_id, k.id, 'ADJUST', 0,
       k.quota_remaining_units - coalesce((SELECT sum(l.key_amount_units) FROM ledger l
                                           WHERE l.api_key_id = k.id), 0),
       'key-limit:opening:' || k.id, 'key limit before the ledger kept it'
FROM api_keys k
WHERE k.quota_remaining_units IS NOT NULL;
