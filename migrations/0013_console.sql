-- The web console: a user signs in with a password (an Argon2id hash, PHC string); operators are
-- users marked as such. A user without a password cannot sign in until an operator sets one or
-- sends an invitation.
ALTER TABLE users
    ADD COLUMN password_hash TEXT CHECK (password_hash LIKE '$argon2id$%'),
    ADD COLUMN operator BOOLEAN NOT NULL DEFAULT FALSE;

-- An invitation link sets a user's password once, before it expires. Only the SHA-256 of its
-- token is kept; taking it is one compare-and-set on used_at.
CREATE TABLE console_invitations (
    token_hash BYTEA PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX console_invitations_user_idx ON console_invitations (user_id);

