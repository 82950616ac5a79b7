//! Enums stored as text: `stored_as_text!(T)` makes `T` (with `as_str` and `parse`) a column
//! type for sqlx on both databases, so rows decode into the enum and an unknown value is an
//! error, not a silent string. Behind the `ssr` feature: the browser never sees sqlx.

/// Implements `sqlx::Type`, `Encode` and `Decode` for an enum with `fn as_str(self) ->
/// &'static str` and `fn parse(&str) -> Option<Self>`, stored as TEXT.
#[macro_export]
macro_rules! stored_as_text {
    ($t:ty) => {
        #[cfg(feature = "ssr")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $t
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(feature = "ssr")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $t
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                <$t>::parse(s)
                    .ok_or_else(|| format!("{:?} is not a stored {}", s, stringify!($t)).into())
            }
        }

        #[cfg(feature = "ssr")]
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $t
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'q str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }
    };
}
