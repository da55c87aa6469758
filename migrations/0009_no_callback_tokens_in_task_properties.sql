-- An upstream echoes the notifyHook it was given (the gateway's callback URL, whose path holds
-- the channel's callback token) in its task properties. The gateway no longer keeps it
-- (gateway/upstream/task_objects.py); this removes what earlier versions kept.
UPDATE tasks SET properties = properties - 'notifyHook' WHERE properties ? 'notifyHook';
